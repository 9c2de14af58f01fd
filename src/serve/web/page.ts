/**
 * The script of `home serve`'s page (compiled to `dist/serve/web/page.js` and served under `/web/lib/`): it lists
 * the tenant's models, makes the chosen model's keys in a Web Worker ({@link WorkerCrypto}), and classifies the
 * drawn or picked image through the client SDK: encrypt (worker), key upload once, inference on the server as a
 * job (progress), decrypt (worker). It shows the answer with the time and bytes of each stage. The token comes
 * from the `token` query parameter or the field; it goes only to the API. The body's `data-state` says where the
 * page is (`idle`, `ready`, `running`, `done`, `error`), for people and for the end-to-end test.
 */
import {
  type Classification,
  normalizeImages,
  RemoteModel,
  ServeClient,
  type StageEvent,
  WorkerCrypto,
} from '../../client/index.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const tokenField = $<HTMLInputElement>('token');
const modelSelect = $<HTMLSelectElement>('model');
const statusLine = $<HTMLParagraphElement>('status');
const progress = $<HTMLProgressElement>('progress');
const canvas = $<HTMLCanvasElement>('draw');
const classifyButton = $<HTMLButtonElement>('classify');
const fileInput = $<HTMLInputElement>('image-file');
const answer = $<HTMLDivElement>('answer');

let client: ServeClient | undefined;
let model: RemoteModel<WorkerCrypto> | undefined;
/** The image as raw values 0…255, channels first: what `normalizeImages` takes. */
let shape = { channels: 1, height: 28, width: 28 };
let raw = new Float64Array(28 * 28);

function setState(state: 'idle' | 'connecting' | 'ready' | 'running' | 'done' | 'error', text: string): void {
  document.body.dataset.state = state;
  statusLine.textContent = text;
  statusLine.className = state === 'error' ? 'error' : '';
  classifyButton.disabled = !(state === 'ready' || state === 'done' || state === 'error') || !model;
}

function fail(error: unknown): void {
  setState('error', error instanceof Error ? error.message : String(error));
}

/** Draws `raw` on the canvas (greyscale, or RGB for three channels). */
function render(): void {
  const { channels, height, width } = shape;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  if (!context) return;
  const image = context.createImageData(width, height);
  const plane = width * height;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) image.data[4 * p + c] = raw[(channels === 3 ? c * plane : 0) + p];
    image.data[4 * p + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

/** A soft round brush of radius ~1.5 pixels at (x, y) in image coordinates (greyscale images only). */
function paint(x: number, y: number): void {
  for (let dy = -2; dy <= 2; dy++) {
    for (let dx = -2; dx <= 2; dx++) {
      const px = Math.floor(x) + dx;
      const py = Math.floor(y) + dy;
      if (px < 0 || py < 0 || px >= shape.width || py >= shape.height) continue;
      const d = Math.hypot(px + 0.5 - x, py + 0.5 - y);
      const i = py * shape.width + px;
      raw[i] = Math.max(raw[i], Math.round(255 * Math.max(0, Math.min(1, 1.6 - d))));
    }
  }
  render();
}

let drawing = false;
canvas.addEventListener('pointerdown', (event) => {
  if (shape.channels !== 1) return;
  drawing = true;
  canvas.setPointerCapture(event.pointerId);
  paint(
    (event.offsetX / canvas.clientWidth) * shape.width,
    (event.offsetY / canvas.clientHeight) * shape.height,
  );
});
canvas.addEventListener('pointermove', (event) => {
  if (drawing) {
    paint(
      (event.offsetX / canvas.clientWidth) * shape.width,
      (event.offsetY / canvas.clientHeight) * shape.height,
    );
  }
});
canvas.addEventListener('pointerup', () => {
  drawing = false;
});
$<HTMLButtonElement>('clear').addEventListener('click', () => {
  raw = new Float64Array(raw.length);
  render();
});

/** The MNIST test digits shipped with the package, as clickable thumbnails. */
async function loadSamples(): Promise<void> {
  const response = await fetch('/web/samples/mnist');
  if (!response.ok) return;
  const samples = (await response.json()) as { labels: number[]; images: string[]; source: string };
  const box = $<HTMLDivElement>('samples');
  box.title = samples.source;
  samples.images.forEach((base64, i) => {
    const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
    const thumb = document.createElement('canvas');
    thumb.width = 28;
    thumb.height = 28;
    thumb.dataset.index = String(i);
    thumb.title = `test image ${i} (label ${samples.labels[i]})`;
    const context = thumb.getContext('2d');
    if (context) {
      const image = context.createImageData(28, 28);
      bytes.forEach((v, p) => {
        image.data.set([v, v, v, 255], 4 * p);
      });
      context.putImageData(image, 0, 0);
    }
    thumb.addEventListener('click', () => {
      if (shape.channels !== 1 || shape.height !== 28 || shape.width !== 28) return;
      raw = Float64Array.from(bytes);
      render();
    });
    box.append(thumb);
  });
}

/** A picked image file, scaled to the model's input size (colour models: e.g. a CIFAR-10 image). */
fileInput.addEventListener('change', async () => {
  const file = fileInput.files?.[0];
  if (!file) return;
  const bitmap = await createImageBitmap(file);
  const scratch = document.createElement('canvas');
  scratch.width = shape.width;
  scratch.height = shape.height;
  const context = scratch.getContext('2d');
  if (!context) return;
  context.drawImage(bitmap, 0, 0, shape.width, shape.height);
  const pixels = context.getImageData(0, 0, shape.width, shape.height).data;
  const plane = shape.width * shape.height;
  raw = new Float64Array(shape.channels * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < shape.channels; c++) {
      // One channel: the mean of red, green and blue.
      raw[c * plane + p] =
        shape.channels === 3
          ? pixels[4 * p + c]
          : (pixels[4 * p] + pixels[4 * p + 1] + pixels[4 * p + 2]) / 3;
    }
  }
  render();
});

async function connect(): Promise<void> {
  setState('connecting', 'listing your models…');
  client = new ServeClient({
    server: location.origin,
    token: tokenField.value.trim(),
    onRetry: (r) => {
      statusLine.textContent = `server busy (${r.reason}): retrying in ${(r.waitMs / 1000).toFixed(1)} s`;
    },
  });
  const models = await client.models({ ready: true });
  modelSelect.replaceChildren(
    ...models.map((m) =>
      Object.assign(document.createElement('option'), { value: m.name, textContent: m.name }),
    ),
  );
  modelSelect.disabled = models.length === 0;
  if (models.length === 0) {
    setState('idle', 'no model is ready: upload one with `home admin model upload`');
    return;
  }
  await openModel(models[0].name);
}

async function openModel(name: string): Promise<void> {
  if (!client) return;
  model?.crypto.terminate();
  model = undefined;
  setState('connecting', `${name}: making the keys in a Web Worker…`);
  progress.removeAttribute('value');
  const opened = await RemoteModel.openWith(client, name, (he) => WorkerCrypto.create(he));
  model = opened;
  const dims = opened.he.input_shape.length === 4 ? opened.he.input_shape.slice(1) : opened.he.input_shape;
  const [channels, height, width] =
    dims.length === 3 ? dims : [1, dims[dims.length - 2], dims[dims.length - 1]];
  shape = { channels, height, width };
  raw = new Float64Array(channels * height * width);
  render();
  const greyDigits = channels === 1 && height === 28 && width === 28;
  $<HTMLDivElement>('samples-box').hidden = !greyDigits;
  fileInput.hidden = greyDigits;
  progress.value = 0;
  setState(
    'ready',
    `${name}: keys made in ${opened.crypto.keygenSeconds.toFixed(2)} s; draw or pick an image`,
  );
}

/** Where each stage sits on the progress bar. */
const STAGES: Record<StageEvent['stage'], [number, number]> = {
  encrypt: [0, 0.1],
  'upload-keys': [0.1, 0.4],
  infer: [0.4, 0.9],
  decrypt: [0.9, 1],
  done: [1, 1],
};

function kib(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

function show(result: Classification, keygenSeconds: number): void {
  const logits = [...result.logits];
  const best = logits.indexOf(Math.max(...logits));
  answer.textContent = String(best);
  answer.dataset.label = String(best);
  answer.dataset.logits = JSON.stringify(logits);
  const low = Math.min(...logits);
  const range = Math.max(...logits) - low || 1;
  $<HTMLDivElement>('scores').replaceChildren(
    ...logits.map((v, i) => {
      const row = document.createElement('div');
      row.className = 'bar';
      const bar = document.createElement('div');
      bar.style.width = `${Math.max(2, ((v - low) / range) * 100)}%`;
      row.append(String(i), bar, v.toFixed(2));
      return row;
    }),
  );
  const rows: [string, string][] = [
    ['key generation (once, worker)', `${keygenSeconds.toFixed(3)} s`],
    ['encrypt (worker)', `${result.seconds.encrypt.toFixed(3)} s`],
    ['key upload', `${result.seconds.uploadKeys.toFixed(3)} s`],
    ['inference (server, on ciphertexts)', `${result.seconds.infer.toFixed(3)} s`],
    ['decrypt (worker)', `${result.seconds.decrypt.toFixed(3)} s`],
    ['evaluation keys sent', kib(result.bytes.keys)],
    ['ciphertexts sent', kib(result.bytes.up)],
    ['ciphertexts received', kib(result.bytes.down)],
  ];
  $<HTMLTableElement>('breakdown').replaceChildren(
    ...rows.map(([what, value]) => {
      const tr = document.createElement('tr');
      tr.append(
        Object.assign(document.createElement('td'), { textContent: what }),
        Object.assign(document.createElement('td'), { textContent: value }),
      );
      return tr;
    }),
  );
}

async function classify(): Promise<void> {
  const current = model;
  if (!current) return;
  setState('running', 'encrypting…');
  progress.value = 0;
  const result = await current.run(normalizeImages(current.he, raw), 1, 0, {
    pollMs: 100,
    onStage: ({ stage, fraction }) => {
      const [from, to] = STAGES[stage];
      progress.value = from + (to - from) * fraction;
      statusLine.textContent = stage === 'done' ? 'done' : `${stage.replace('-', ' ')}…`;
    },
  });
  show(result, current.crypto.keygenSeconds);
  setState(
    'done',
    `${current.name}: answered in ${(result.seconds.encrypt + result.seconds.uploadKeys + result.seconds.infer + result.seconds.decrypt).toFixed(2)} s`,
  );
}

$<HTMLButtonElement>('connect').addEventListener('click', () => void connect().catch(fail));
modelSelect.addEventListener('change', () => void openModel(modelSelect.value).catch(fail));
classifyButton.addEventListener('click', () => void classify().catch(fail));

render();
void loadSamples().catch(fail);
const fromQuery = new URLSearchParams(location.search).get('token');
if (fromQuery) {
  tokenField.value = fromQuery;
  // Out of the address bar and the history: the token is a secret.
  history.replaceState(null, '', location.pathname);
  void connect().catch(fail);
}
