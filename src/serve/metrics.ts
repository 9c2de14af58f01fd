/**
 * The server's Prometheus metrics (`GET /metrics`, prom-client): requests by route, method, status and tenant,
 * latency histograms, inference seconds, queue depth and bytes in and out. Labels are route patterns
 * (`/v2/models/:model/infer`, never the URL), status codes, tenant and model names: never a token, key id, key
 * or ciphertext byte. Each server has its own registry, so two servers in one process do not mix their counts.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * One answered request, as the response hook sees it.
 *
 * @example
 * ```ts
 * metrics.request({ route: '/v2/keys', method: 'POST', status: 201, tenant: 'acme', seconds: 0.2, bytesIn: 9e6, bytesOut: 300 });
 * ```
 */
export interface RequestSample {
  /** The route pattern, or `unmatched` for a URL no route serves. */
  readonly route: string;
  readonly method: string;
  readonly status: number;
  /** The tenant name, `admin`, or `-` for an unauthenticated request. */
  readonly tenant: string;
  readonly seconds: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/**
 * The metrics of one server.
 *
 * @example
 * ```ts
 * const metrics = new ServerMetrics(() => engine.depth);
 * reply.type(metrics.contentType).send(await metrics.render());
 * ```
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'route' | 'method' | 'status' | 'tenant'>;
  readonly #latency: Histogram<'route' | 'method' | 'tenant'>;
  readonly #bytesIn: Counter<'route' | 'tenant'>;
  readonly #bytesOut: Counter<'route' | 'tenant'>;
  readonly #inference: Histogram<'tenant' | 'model'>;
  readonly #queueWait: Histogram<'tenant'>;
  readonly #refused: Counter<'tenant' | 'code'>;

  /** @param depth - the inference queue's depth (waiting + running), read at each scrape. */
  constructor(depth: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'home_' });
    this.#requests = new Counter({
      name: 'home_http_requests_total',
      help: 'HTTP requests answered, by route pattern, method, status and tenant',
      labelNames: ['route', 'method', 'status', 'tenant'],
      registers,
    });
    this.#latency = new Histogram({
      name: 'home_http_request_duration_seconds',
      help: 'Time from a request received to its answer sent',
      labelNames: ['route', 'method', 'tenant'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180],
      registers,
    });
    this.#bytesIn = new Counter({
      name: 'home_http_request_bytes_total',
      help: 'Request body bytes received (Content-Length)',
      labelNames: ['route', 'tenant'],
      registers,
    });
    this.#bytesOut = new Counter({
      name: 'home_http_response_bytes_total',
      help: 'Response body bytes sent (Content-Length)',
      labelNames: ['route', 'tenant'],
      registers,
    });
    this.#inference = new Histogram({
      name: 'home_inference_seconds',
      help: 'Evaluation time of an inference (setting up a model + key pair included when not cached)',
      labelNames: ['tenant', 'model'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180, 600],
      registers,
    });
    this.#queueWait = new Histogram({
      name: 'home_inference_queue_seconds',
      help: 'Time an inference waited behind others before it ran',
      labelNames: ['tenant'],
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 180],
      registers,
    });
    this.#refused = new Counter({
      name: 'home_admission_refused_total',
      help: 'Requests refused by a quota (QUOTA_EXCEEDED) or for overload (OVERLOADED)',
      labelNames: ['tenant', 'code'],
      registers,
    });
    new Gauge({
      name: 'home_inference_queue_depth',
      help: 'Inferences accepted and not finished (the one running and those waiting)',
      registers,
      collect() {
        this.set(depth());
      },
    });
  }

  /** The Content-Type of {@link render}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text of every metric. */
  async render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Counts one answered request. */
  request(sample: RequestSample): void {
    const { route, method, tenant } = sample;
    this.#requests.inc({ route, method, status: String(sample.status), tenant });
    this.#latency.observe({ route, method, tenant }, sample.seconds);
    if (sample.bytesIn > 0) this.#bytesIn.inc({ route, tenant }, sample.bytesIn);
    if (sample.bytesOut > 0) this.#bytesOut.inc({ route, tenant }, sample.bytesOut);
  }

  /** Counts one request refused by a quota or for overload. */
  refused(tenant: string, code: 'QUOTA_EXCEEDED' | 'OVERLOADED'): void {
    this.#refused.inc({ tenant, code });
  }

  /** Records one finished inference. */
  inference(tenant: string, model: string, seconds: number, queueSeconds: number): void {
    this.#inference.observe({ tenant, model }, seconds);
    this.#queueWait.observe({ tenant }, queueSeconds);
  }
}
