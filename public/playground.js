// Playground logic: calls /models, /generate, /mix and /interpolate and shows the images.
// Plain browser JavaScript (an ES module), served as is by src/routes/playground.ts.

const byId = (id) => document.getElementById(id);

/** Loaded models from GET /models, by name. */
let models = new Map();

/** Object URLs currently shown, one per <img>, revoked when replaced. */
const shownUrls = new Map();

function setStatus(id, text, isError = false) {
  const element = byId(id);
  element.textContent = text;
  element.classList.toggle('error', isError);
}

function requestHeaders(json) {
  const headers = { Accept: 'image/png, image/webp, application/json' };
  if (json) headers['Content-Type'] = 'application/json';
  const key = byId('api-key').value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

/** Sends a request and throws an Error with the problem+json detail when the status is not 2xx. */
async function callApi(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: requestHeaders(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.ok) return response;
  let detail = response.statusText;
  try {
    const problem = await response.json();
    detail = problem.detail ?? problem.title ?? detail;
  } catch {
    // Not a JSON body: keep the status text.
  }
  throw new Error(`HTTP ${response.status}: ${detail}`);
}

/** Parses "1, 2, 3" into seeds, throwing an error that names the field when an entry is not a valid seed. */
function parseSeeds(text, field) {
  const seeds = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number);
  if (seeds.length === 0 || seeds.some((seed) => !Number.isInteger(seed) || seed < 0 || seed > 4294967295)) {
    throw new Error(`${field}: expected comma-separated integers from 0 to 4294967295, got "${text}"`);
  }
  return seeds;
}

function selectedModel() {
  return models.get(byId('model').value);
}

/** Fields shared by every request: model, truncation, class and noise. */
function commonFields() {
  const psi = Number(byId('psi').value);
  if (!Number.isFinite(psi)) throw new Error(`psi: expected a number, got "${byId('psi').value}"`);
  const fields = { psi, noise_mode: byId('noise-mode').value };
  const model = selectedModel();
  if (model) fields.model = model.name;
  if (model && model.c_dim > 0) fields.class = Number(byId('class').value);
  return fields;
}

async function showImage(imageId, response) {
  const url = URL.createObjectURL(await response.blob());
  const image = byId(imageId);
  const previous = shownUrls.get(imageId);
  image.src = url;
  shownUrls.set(imageId, url);
  if (previous) URL.revokeObjectURL(previous);
}

function describeModel() {
  const model = selectedModel();
  byId('class-field').hidden = !(model && model.c_dim > 0);
  if (!model) {
    byId('model-info').textContent = '';
    return;
  }
  byId('class').max = String(Math.max(0, model.c_dim - 1));
  const conditional = model.c_dim > 0 ? `, conditional on ${model.c_dim} classes` : '';
  byId('model-info').textContent =
    `${model.name}: ${model.resolution}×${model.resolution}, z ${model.z_dim}, w ${model.w_dim}, ${model.num_ws} ws layers${conditional} ` +
    `(from ${model.source.format} ${model.source.file})`;
}

async function loadModels() {
  setStatus('settings-status', 'loading models…');
  try {
    const response = await callApi('/models');
    const list = (await response.json()).models;
    models = new Map(list.map((model) => [model.name, model]));
    const select = byId('model');
    select.replaceChildren(
      ...list.map((model) => {
        const option = new Option(model.default ? `${model.name} (default)` : model.name, model.name);
        option.selected = model.default;
        return option;
      }),
    );
    describeModel();
    setStatus('settings-status', '');
  } catch (err) {
    setStatus('settings-status', `${err.message}${err.message.includes('401') ? ' (enter the API key, then reload)' : ''}`, true);
  }
}

/** Runs one request from a button, which stays disabled until the image or the error is shown. */
async function runAction(buttonId, statusId, imageId, buildRequest) {
  const button = byId(buttonId);
  button.disabled = true;
  setStatus(statusId, 'working…');
  const started = performance.now();
  try {
    const [path, body] = buildRequest();
    const response = await callApi(path, body);
    await showImage(imageId, response);
    const timing = response.headers.get('Server-Timing');
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    setStatus(statusId, `${response.headers.get('Content-Type')} in ${seconds} s${timing ? `\n${timing}` : ''}`);
  } catch (err) {
    setStatus(statusId, err.message, true);
  } finally {
    button.disabled = false;
  }
}

byId('model').addEventListener('change', describeModel);
byId('reload-models').addEventListener('click', loadModels);
byId('random-seed').addEventListener('click', () => {
  byId('seed').value = String(Math.floor(Math.random() * 4294967296));
});

byId('generate-button').addEventListener('click', () =>
  runAction('generate-button', 'generate-status', 'generate-image', () => {
    const seed = parseSeeds(byId('seed').value, 'seed');
    return ['/generate', { ...commonFields(), seeds: seed.slice(0, 1), format: byId('format').value }];
  }),
);

byId('mix-button').addEventListener('click', () =>
  runAction('mix-button', 'mix-status', 'mix-image', () => [
    '/mix',
    {
      ...commonFields(),
      rows: { seeds: parseSeeds(byId('mix-rows').value, 'row seeds') },
      cols: { seeds: parseSeeds(byId('mix-cols').value, 'column seeds') },
      styles: [byId('mix-styles').value],
      output: 'grid',
      format: 'png',
    },
  ]),
);

byId('interpolate-button').addEventListener('click', () =>
  runAction('interpolate-button', 'interpolate-status', 'interpolate-image', () => [
    '/interpolate',
    {
      ...commonFields(),
      seeds: parseSeeds(byId('interpolate-seeds').value, 'keyframe seeds'),
      frames_per_segment: Number(byId('interpolate-frames').value),
      space: byId('interpolate-space').value,
      loop: byId('interpolate-loop').checked,
      output: 'webp',
    },
  ]),
);

loadModels();
