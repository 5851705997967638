// Vary Region's painter: a canvas laid over the image, as many pixels as the image itself, where
// the user paints the region Midjourney should redraw (mouse, pen or finger through pointer
// events; arrow keys and Space for keyboard users). On submit the strokes become the mask the
// relay wants (upstream-api.md §4.8): a PNG data URI, white = redraw, black = keep.

const PAINT = "rgb(255, 45, 120)"; // shown half transparent over the image (see jobs.css)
const KEY_STEPS = 40; // the arrow keys cross the image in this many steps
const PAINTED_ALPHA = 64; // a pixel at least this opaque is in the region (keeps soft edges)

export function setUpMaskPainter(dialog) {
  const canvas = dialog.querySelector("[data-mask-canvas]");
  const image = dialog.querySelector("[data-mask-image]");
  const stage = dialog.querySelector("[data-mask-stage]");
  const input = dialog.querySelector("[data-mask-input]");
  const error = dialog.querySelector("[data-mask-error]");
  const brush = dialog.querySelector("[data-mask-brush]");
  const cursor = dialog.querySelector("[data-mask-cursor]");
  const status = dialog.querySelector("[data-mask-status]");
  const strokes = []; // {width, points: [[x, y], ...], source} in image pixels, oldest first
  let active = null; // the stroke being painted; source "pointer" or "keys"
  let keyPoint = null; // the keyboard brush's position
  let context = canvas ? canvas.getContext("2d") : null;

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
  }

  function fitToImage() {
    // The canvas has the image's own pixel size (the page knows it; the image confirms it).
    const width = image.naturalWidth || canvas.width;
    const height = image.naturalHeight || canvas.height;
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
      context = canvas.getContext("2d");
      redraw();
    }
    // Tall images fit the screen's height: the stage is as wide as that allows.
    stage.style.setProperty("--mask-stage-max", `calc(60vh * ${width} / ${height})`);
  }

  function toImage(event) {
    const rect = canvas.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) * canvas.width) / rect.width,
      ((event.clientY - rect.top) * canvas.height) / rect.height,
    ];
  }

  function brushWidth() {
    // The slider is in screen pixels, so a brush looks the same size whatever the image's size.
    const rect = canvas.getBoundingClientRect();
    return (Number(brush.value) * canvas.width) / Math.max(1, rect.width);
  }

  function dot(width, [x, y]) {
    context.fillStyle = PAINT;
    context.beginPath();
    context.arc(x, y, width / 2, 0, Math.PI * 2);
    context.fill();
  }

  function segment(width, from, to) {
    context.strokeStyle = PAINT;
    context.lineWidth = width;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(...from);
    context.lineTo(...to);
    context.stroke();
  }

  function redraw() {
    context.clearRect(0, 0, canvas.width, canvas.height);
    for (const stroke of strokes) {
      dot(stroke.width, stroke.points[0]);
      stroke.points.slice(1).forEach((point, index) => segment(stroke.width, stroke.points[index], point));
    }
  }

  function begin(point, source) {
    active = { width: brushWidth(), points: [point], source };
    strokes.push(active);
    dot(active.width, point);
    error.hidden = true;
  }

  function extend(point) {
    const last = active.points[active.points.length - 1];
    active.points.push(point);
    segment(active.width, last, point);
  }

  function showCursor() {
    if (!keyPoint) return;
    const rect = canvas.getBoundingClientRect();
    const size = Number(brush.value);
    cursor.style.left = `${(keyPoint[0] / canvas.width) * rect.width}px`;
    cursor.style.top = `${(keyPoint[1] / canvas.height) * rect.height}px`;
    cursor.style.width = `${size}px`;
    cursor.style.height = `${size}px`;
    cursor.classList.toggle("is-painting", active?.source === "keys");
    cursor.hidden = false;
  }

  function announce() {
    const painting = active?.source === "keys";
    status.textContent = painting ? status.dataset.labelPainting : status.dataset.labelNotPainting;
  }

  function onKey(event) {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    keyPoint ??= [canvas.width / 2, canvas.height / 2];
    if (event.key in moves) {
      event.preventDefault();
      const step = Math.max(canvas.width, canvas.height) / KEY_STEPS;
      const [dx, dy] = moves[event.key];
      const next = [
        Math.min(canvas.width, Math.max(0, keyPoint[0] + dx * step)),
        Math.min(canvas.height, Math.max(0, keyPoint[1] + dy * step)),
      ];
      if (active?.source === "keys") extend(next);
      keyPoint = next;
    } else if (event.key === " ") {
      event.preventDefault();
      if (active?.source === "keys") active = null;
      else begin(keyPoint, "keys");
      announce();
    } else {
      return;
    }
    showCursor();
  }

  /** Put the mask in the form; false (and a message in the dialog) when there is nothing to send. */
  function prepare() {
    if (!context) {
      showError(error.dataset.labelEmpty);
      return false;
    }
    const mask = exportMask();
    if (!mask) {
      showError(error.dataset.labelEmpty);
      canvas.focus();
      return false;
    }
    if (mask.length > Number(error.dataset.maxChars || Infinity)) {
      showError(error.dataset.labelTooLarge);
      return false;
    }
    input.value = mask;
    return true;
  }

  function exportMask() {
    const { width, height } = canvas;
    const painted = context.getImageData(0, 0, width, height).data;
    const out = document.createElement("canvas");
    out.width = width;
    out.height = height;
    const outContext = out.getContext("2d");
    const pixels = outContext.createImageData(width, height);
    let any = false;
    for (let i = 0; i < painted.length; i += 4) {
      const value = painted[i + 3] >= PAINTED_ALPHA ? 255 : 0;
      if (value) any = true;
      pixels.data[i] = value;
      pixels.data[i + 1] = value;
      pixels.data[i + 2] = value;
      pixels.data[i + 3] = 255;
    }
    if (!any) return "";
    outContext.putImageData(pixels, 0, 0);
    return out.toDataURL("image/png");
  }

  if (!canvas || !image) return { prepare };

  if (image.complete) fitToImage();
  image.addEventListener("load", fitToImage);

  canvas.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    begin(toImage(event), "pointer");
  });
  canvas.addEventListener("pointermove", (event) => {
    if (active?.source !== "pointer") return;
    const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of coalesced.length ? coalesced : [event]) extend(toImage(each));
  });
  for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
    canvas.addEventListener(name, () => {
      if (active?.source === "pointer") active = null;
    });
  }
  canvas.addEventListener("keydown", onKey);
  canvas.addEventListener("blur", () => {
    if (active?.source === "keys") active = null;
    cursor.hidden = true;
  });
  canvas.addEventListener("focus", showCursor);

  dialog.querySelector("[data-mask-undo]").addEventListener("click", () => {
    strokes.pop();
    active = null;
    redraw();
  });
  dialog.querySelector("[data-mask-clear]").addEventListener("click", () => {
    strokes.length = 0;
    active = null;
    redraw();
  });
  return { prepare };
}
