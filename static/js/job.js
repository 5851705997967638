// The job status page: show the job's state and results, and follow it live by polling
// status.json when the server says the next change may come (works the same in the embedded and
// the scaled mode: no socket from the worker needed).
import { copyWithFeedback } from "./clipboard.js";
import { setUpMaskPainter } from "./mask.js";

const root = document.querySelector("[data-job]");
const initial = JSON.parse(document.getElementById("job-status-data").textContent);
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
// Words come translated from the page (data-label-*) and the status JSON (status_label).
const LABELS = root.dataset;

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function renderAssets(assets) {
  const box = root.querySelector("[data-testid=job-assets]");
  box.replaceChildren(
    ...assets.map((asset, index) => {
      const figure = element("figure", { class: "job-asset" });
      if (asset.mime.startsWith("image/")) {
        const link = element("a", { href: asset.url });
        link.append(element("img", { src: asset.url, alt: `${LABELS.labelResult} ${index + 1}`, loading: "lazy" }));
        figure.append(link);
      } else if (asset.mime.startsWith("audio/")) {
        figure.append(element("audio", { controls: "", src: asset.url, preload: "metadata" }));
      } else if (asset.mime.startsWith("video/")) {
        figure.append(element("video", { controls: "", src: asset.url, preload: "metadata" }));
      }
      const caption = element("figcaption");
      const size = asset.width ? `${asset.width}×${asset.height} · ` : "";
      caption.append(
        element("a", { href: `${asset.url}?download=1`, class: "btn btn-small" }, LABELS.labelDownload),
        ` ${size}${Math.max(1, Math.round(asset.bytes / 1024))} KB`,
      );
      figure.append(caption);
      return figure;
    }),
  );
}

function render(status) {
  const badge = root.querySelector("[data-testid=job-status]");
  if (badge.dataset.status !== status.status) {
    badge.dataset.status = status.status;
    badge.textContent = status.status_label;
  }
  root.querySelector("[data-testid=job-progress]").value = status.progress;
  root.querySelector("[data-progress-text]").textContent = `${status.progress}%`;
  const error = root.querySelector("[data-testid=job-error]");
  error.hidden = !(status.status === "failed" && status.error);
  if (status.error) error.textContent = status.error;
  const revised = root.querySelector("[data-revised-prompt]");
  if (status.result && status.result.revised_prompt) {
    revised.querySelector("span").textContent = status.result.revised_prompt;
    revised.hidden = false;
  }
  renderAssets(status.assets);
}

async function follow(delay) {
  await new Promise((resolve) => setTimeout(resolve, delay));
  let status;
  try {
    const response = await fetch(root.dataset.statusUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    status = await response.json();
  } catch {
    follow(Math.min(delay * 2, 30000)); // a network hiccup: try again, more slowly
    return;
  }
  render(status);
  if (FINISHED.has(status.status)) {
    window.location.reload(); // the page's buttons (retry, cancel) follow the final state
    return;
  }
  // The server knows when the worker next asks the relay (next_check_ms): look just after it.
  follow(status.next_check_ms ?? Math.min(delay * 1.5, 10000));
}

render(initial);
if (!FINISHED.has(initial.status)) follow(initial.next_check_ms ?? 1000);

// A speech-to-text job's transcript (rendered by the page once the job has finished).
const copyButton = root.querySelector("[data-copy-transcript]");
copyButton?.addEventListener("click", () => {
  const transcript = root.querySelector("[data-testid=transcript]");
  const { labelCopied, labelFailed } = copyButton.dataset;
  copyWithFeedback(copyButton, transcript.textContent, labelCopied, labelFailed);
});

// A Midjourney image's seed, once fetched ("Show seed").
const seedButton = root.querySelector("[data-copy-seed]");
seedButton?.addEventListener("click", () => {
  const seed = root.querySelector("[data-testid=job-seed]");
  copyWithFeedback(seedButton, seed.textContent.trim(), seedButton.dataset.labelCopied, seedButton.dataset.labelFailed);
});

// Custom Zoom: the factor after --zoom must be above 1 and at most 2 (the server checks too).
const ZOOM = /--zoom\b(?:\s*=?\s*(?!--)(\S+))?/gi;

function zoomIsValid(prompt) {
  const found = [...prompt.matchAll(ZOOM)];
  if (found.length !== 1) return false;
  const zoom = Number(found[0][1]);
  return Number.isFinite(zoom) && zoom > 1 && zoom <= 2;
}

function checkZoom(dialog) {
  const prompt = dialog.querySelector("textarea[name=prompt]");
  const error = dialog.querySelector("[data-zoom-error]");
  const valid = zoomIsValid(prompt.value);
  error.hidden = valid;
  if (valid) {
    prompt.removeAttribute("aria-invalid");
  } else {
    error.textContent = error.dataset.labelRange;
    prompt.setAttribute("aria-invalid", "true");
    prompt.focus();
  }
  return valid;
}

// Buttons that need more than a press (Vary Region, Custom Zoom) open a <dialog>: modal, so the
// keyboard stays inside it, and Esc or Cancel closes it.
for (const dialog of document.querySelectorAll("dialog[data-action-dialog]")) {
  const painter = dialog.dataset.actionDialog === "vary_region" ? setUpMaskPainter(dialog) : null;
  for (const button of dialog.querySelectorAll("[data-close-dialog]")) {
    button.addEventListener("click", () => dialog.close());
  }
  const form = dialog.querySelector("form");
  form.addEventListener("submit", (event) => {
    const ready = painter ? painter.prepare() : checkZoom(dialog);
    if (!ready) {
      event.preventDefault();
      return;
    }
    // One press, one child job: a second click while the page loads would make another.
    setTimeout(() => {
      for (const button of form.querySelectorAll("button")) button.disabled = true;
    });
  });
  // Coming back to the page (the browser's back button) finds the buttons usable again.
  window.addEventListener("pageshow", () => {
    for (const button of form.querySelectorAll("button")) button.disabled = false;
  });
  if ("openOnLoad" in dialog.dataset) dialog.showModal();
}
for (const opener of document.querySelectorAll("[data-open-dialog]")) {
  opener.addEventListener("click", () => document.getElementById(opener.dataset.openDialog)?.showModal());
}
