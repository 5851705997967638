// Copy text to the clipboard. navigator.clipboard only exists in secure contexts, and a
// self-hosted studio is often reached over plain http on a LAN address, so fall back to the
// old execCommand("copy") on a throw-away textarea there.

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Permission refused or document not focused: try the fallback below.
    }
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "clipboard-scratch";
  document.body.append(area);
  const previous = document.activeElement;
  area.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  area.remove();
  if (previous instanceof HTMLElement) previous.focus({ preventScroll: true });
  return copied;
}

/** Copy, then let the button say "Copied" for a moment (its label is restored afterwards). */
export async function copyWithFeedback(button, text, copiedLabel, failedLabel) {
  const ok = await copyText(text);
  const original = button.dataset.label || button.textContent;
  button.dataset.label = original;
  button.textContent = ok ? copiedLabel : failedLabel;
  clearTimeout(Number(button.dataset.resetTimer || 0));
  button.dataset.resetTimer = String(
    setTimeout(() => {
      button.textContent = button.dataset.label;
    }, 1500),
  );
  return ok;
}
