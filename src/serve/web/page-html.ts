/**
 * The HTML of `home serve`'s page (`GET /`), with its styles. Kept as a module so that it ships in dist/ with the
 * rest of the server; the script it loads is the compiled `src/serve/web/page.ts`.
 */

/**
 * The page: a token field and a model choice, a canvas to draw a digit on (or sample digits, or an image file for
 * a colour model), a Classify button, a progress bar, the answer and its time and bytes breakdown.
 *
 * @example
 * ```ts
 * app.get('/', async (_request, reply) => reply.type('text/html').send(PAGE_HTML));
 * ```
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>HomE: encrypted inference</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 12px 24px; }
  header h1 { font-size: 20px; margin: 0; }
  header p { margin: 2px 0 0; color: #b9c0cf; font-size: 13px; }
  main { display: grid; grid-template-columns: 320px 1fr; gap: 20px; padding: 20px 24px; max-width: 1000px; }
  section { background: #fff; border-radius: 8px; padding: 16px; box-shadow: 0 1px 3px #0002; }
  label { display: block; font-weight: 600; margin: 8px 0 4px; }
  input[type=password], select { width: 100%; box-sizing: border-box; padding: 6px; font: inherit; }
  button { font: inherit; padding: 6px 14px; border: 0; border-radius: 6px; background: #3358d4; color: #fff; cursor: pointer; }
  button:disabled { background: #9aa6c7; cursor: default; }
  button.secondary { background: #e3e7f1; color: #1d2330; }
  #draw { width: 280px; height: 280px; background: #000; border-radius: 6px; touch-action: none; cursor: crosshair; image-rendering: pixelated; }
  #samples { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 8px; }
  #samples canvas { width: 42px; height: 42px; border-radius: 4px; cursor: pointer; image-rendering: pixelated; }
  progress { width: 100%; height: 14px; }
  #status { min-height: 1.4em; color: #4a5368; }
  #answer { font-size: 64px; font-weight: 700; text-align: center; min-height: 80px; color: #3358d4; }
  .bar { display: grid; grid-template-columns: 20px 1fr 70px; gap: 6px; align-items: center; font-size: 13px; }
  .bar div { height: 10px; background: #3358d4; border-radius: 3px; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 10px; }
  td { padding: 3px 6px; border-bottom: 1px solid #e3e7f1; }
  td:last-child { text-align: right; font-variant-numeric: tabular-nums; }
  .error { color: #b3261e; }
  [hidden] { display: none !important; }
</style>
</head>
<body data-state="idle">
<header>
  <h1>HomE: encrypted inference</h1>
  <p>Your image is encrypted in this page (CKKS, in a Web Worker), classified by the server on ciphertexts, and decrypted here. The secret key never leaves the page.</p>
</header>
<main>
  <section>
    <label for="token">Tenant token</label>
    <input id="token" type="password" autocomplete="off" placeholder="home_…">
    <p><button id="connect">Connect</button></p>
    <label for="model">Model</label>
    <select id="model" disabled></select>
    <p id="status"></p>
    <progress id="progress" max="1" value="0"></progress>
  </section>
  <section>
    <div style="display:flex; gap:20px; flex-wrap:wrap">
      <div>
        <canvas id="draw" width="28" height="28"></canvas>
        <p>
          <button id="classify" disabled>Classify</button>
          <button id="clear" class="secondary">Clear</button>
          <input id="image-file" type="file" accept="image/*" hidden>
        </p>
        <div id="samples-box"><small>or pick an MNIST test digit:</small><div id="samples"></div></div>
      </div>
      <div style="flex:1; min-width:260px">
        <div id="answer" data-label=""></div>
        <div id="scores"></div>
        <table id="breakdown"></table>
      </div>
    </div>
  </section>
</main>
<script type="module" src="/web/lib/serve/web/page.js"></script>
</body>
</html>
`;
