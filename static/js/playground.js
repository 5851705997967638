// Playground pages: the completion streams into the page as it is written (fetch + a readable
// stream of newline-delimited JSON events), Stop aborts it, and Ctrl/Cmd+Enter sends a form.
// Without this script both forms still work as plain POSTs. Model output is only ever put in
// the page as text (textContent / text nodes), never as HTML.

const strings = document.getElementById("pg-strings")?.dataset ?? {};

function format(template, values) {
  return (template || "").replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""));
}

// --- shared: keyboard shortcut, model suggestions, busy button --------------------------------

function initShortcut(form) {
  form.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.isComposing) return;
    event.preventDefault();
    form.requestSubmit();
  });
}

function initModelSuggestions(form) {
  const list = document.getElementById(form.dataset.modelsList || "");
  if (!list || !form.dataset.modelsUrl) return;
  const wantsEmbeddings = list.id === "embedding-models";
  fetch(form.dataset.modelsUrl, { headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : { models: [] }))
    .then(({ models = [] }) => {
      for (const id of models) {
        if (/embed/i.test(id) !== wantsEmbeddings) continue;
        const option = document.createElement("option");
        option.value = id;
        list.append(option);
      }
    })
    .catch(() => {}); // suggestions are a convenience; any model name can be typed
}

function initBusyForm(form) {
  form.addEventListener("submit", () => {
    const button = form.querySelector("button[type=submit]");
    if (!button || button.disabled) return;
    // Disabled after the submit has been dispatched, so the form still sends.
    setTimeout(() => {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      button.textContent = button.dataset.busyLabel || button.textContent;
      const spinner = document.createElement("span");
      spinner.className = "spinner";
      spinner.setAttribute("aria-hidden", "true");
      button.prepend(spinner);
    });
  });
}

// --- completions ------------------------------------------------------------------------------

class CompletionPage {
  constructor(form) {
    this.form = form;
    this.runButton = form.querySelector("[data-run]");
    this.stopButton = form.querySelector("[data-stop]");
    this.formError = form.querySelector("[data-form-error]");
    this.output = document.querySelector("[data-output]");
    this.status = document.querySelector("[data-status]");
    this.outputError = document.querySelector("[data-output-error]");
    this.controller = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!this.controller) this.run();
    });
    this.stopButton.addEventListener("click", () => this.stop());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.controller) this.stop();
    });
  }

  async run() {
    this.clearErrors();
    this.output.textContent = "";
    this.setRunning(true);
    this.setStatus("streaming", strings.streaming);
    const controller = new AbortController();
    this.controller = controller;
    let ended = false;
    try {
      const response = await fetch(this.form.dataset.streamUrl, {
        method: "POST",
        body: new FormData(this.form),
        headers: { Accept: "application/x-ndjson" },
        credentials: "same-origin",
        signal: controller.signal,
      });
      if (!response.ok) {
        await this.showRefusal(response);
        ended = true;
        return;
      }
      ended = await this.read(response.body, controller.signal);
      if (controller.signal.aborted) this.setStatus("stopped", strings.stopped);
      else if (!ended) this.fail(strings.network);
    } catch {
      if (controller.signal.aborted) this.setStatus("stopped", strings.stopped);
      else this.fail(strings.network);
    } finally {
      this.controller = null;
      this.setRunning(false);
    }
  }

  // Reads events until the stream ends; true when it ended with `done` or `error`.
  async read(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let finished = false;
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) finished = this.handle(JSON.parse(line)) || finished;
      }
    }
    return finished;
  }

  handle(event) {
    if (event.type === "delta") {
      this.output.append(document.createTextNode(event.text));
      return false;
    }
    if (event.type === "done") {
      this.setStatus("done", this.summary(event));
      return true;
    }
    if (event.type === "error") {
      this.fail(event.detail);
      return true;
    }
    return false;
  }

  summary({ finish_reason: reason, usage }) {
    let text = reason ? format(strings.finishedReason, { reason }) : strings.finished;
    if (usage) {
      text += " " + format(strings.tokens, {
        prompt: usage.prompt_tokens,
        completion: usage.completion_tokens,
      });
      if (usage.estimated) text += " " + strings.estimated;
    }
    return text;
  }

  stop() {
    this.controller?.abort();
  }

  async showRefusal(response) {
    let payload = {};
    try {
      payload = await response.json();
    } catch {
      payload = {};
    }
    if (payload.errors) {
      for (const [name, errors] of Object.entries(payload.errors)) {
        const messages = errors.map((error) => error.message);
        if (name === "__all__") this.showFormError(messages);
        else this.showFieldError(name, messages);
      }
    } else if (response.status === 401) {
      this.showFormError([payload.error || strings.signedOut]);
    } else {
      this.showFormError([payload.error || format(strings.unexpected, { status: response.status })]);
    }
    this.setStatus("idle", "");
    const invalid = this.form.querySelector("[aria-invalid=true]");
    (invalid || this.formError).focus?.();
  }

  showFormError(messages) {
    this.formError.replaceChildren(
      ...messages.map((message) => {
        const paragraph = document.createElement("p");
        paragraph.textContent = message;
        return paragraph;
      }),
    );
    this.formError.hidden = false;
  }

  showFieldError(name, messages) {
    const row = this.form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    const input = row?.querySelector("input, textarea, select");
    if (!row || !input) {
      this.showFormError(messages);
      return;
    }
    const list = document.createElement("ul");
    list.className = "errorlist";
    list.id = `${input.id}_error`;
    for (const message of messages) {
      const item = document.createElement("li");
      item.textContent = message;
      list.append(item);
    }
    row.append(list);
    input.setAttribute("aria-invalid", "true");
    const described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (!described.includes(list.id)) described.push(list.id);
    input.setAttribute("aria-describedby", described.join(" "));
  }

  clearErrors() {
    this.formError.hidden = true;
    this.formError.replaceChildren();
    this.outputError.hidden = true;
    this.outputError.textContent = "";
    for (const list of this.form.querySelectorAll("[data-field] > .errorlist")) {
      const input = list.parentElement.querySelector("input, textarea, select");
      list.remove();
      if (!input) continue;
      input.removeAttribute("aria-invalid");
      const described = (input.getAttribute("aria-describedby") || "")
        .split(" ")
        .filter((id) => id && id !== list.id);
      if (described.length) input.setAttribute("aria-describedby", described.join(" "));
      else input.removeAttribute("aria-describedby");
    }
  }

  fail(detail) {
    this.outputError.textContent = detail;
    this.outputError.hidden = false;
    this.setStatus("error", strings.failed);
  }

  setStatus(state, text) {
    this.status.dataset.state = state;
    this.status.textContent = text;
  }

  setRunning(running) {
    const stopHadFocus = document.activeElement === this.stopButton;
    this.runButton.disabled = running;
    this.stopButton.hidden = !running;
    this.output.setAttribute("aria-busy", String(running));
    // Keyboard users land on Stop while it runs, and back on the send button afterwards.
    if (running) this.stopButton.focus();
    else if (stopHadFocus) this.runButton.focus();
  }
}

for (const form of document.querySelectorAll("form[data-submit-shortcut]")) initShortcut(form);
for (const form of document.querySelectorAll("form[data-models-url]")) initModelSuggestions(form);
for (const form of document.querySelectorAll("form[data-busy-form]")) initBusyForm(form);
for (const form of document.querySelectorAll("form[data-completion-form]")) new CompletionPage(form);
