// The conversation header: model picker, settings panel, and the "More" menu (rename, archive;
// export and delete are plain links). Everything here talks HTTP (JSON endpoints), not the socket.

import { fillModelSelect, postForm } from "./chat-common.js";
import { t } from "./chat-strings.js";

const PARAM_NAMES = ["temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty"];

const ui = {
  title: document.getElementById("conversation-title"),
  modelSelect: document.getElementById("model-select"),
  modelError: document.querySelector("[data-model-error]"),
  modelRefresh: document.querySelector("[data-model-refresh]"),
  settingsToggle: document.querySelector("[data-settings-toggle]"),
  settingsPanel: document.getElementById("settings-panel"),
  settingsForm: document.getElementById("settings-form"),
  settingsStatus: document.querySelector("[data-settings-status]"),
  menu: document.querySelector("[data-conversation-menu]"),
  renameButton: document.querySelector("[data-rename]"),
  renameForm: document.getElementById("rename-form"),
  archiveButton: document.querySelector("[data-archive]"),
  pageStatus: document.querySelector("[data-page-status]"),
};

/** A one-line reason from a failed JSON answer ({error}, {detail} or form {errors}). */
export function resultError(result) {
  const body = result.data;
  if (typeof body?.error === "string") return body.error;
  if (typeof body?.detail === "string") return body.detail;
  if (body?.errors) return Object.values(body.errors).flat().join(" ");
  return t("server_error", "The server answered with an error.");
}

export class ConversationHeader {
  /**
   * @param data      the page's conversation data (model, params, urls…); kept up to date here
   * @param onRenamed called with the new title after a rename
   */
  constructor(data, { onRenamed }) {
    this.data = data;
    this.onRenamed = onRenamed;
    this.fillSettings(data);
    this.bind();
    /** Settles when the model list has arrived (or failed); the picker then holds a model. */
    this.modelsLoaded = this.loadModels();
  }

  get model() {
    return ui.modelSelect.value;
  }

  loadModels(refresh = false) {
    ui.modelRefresh.setAttribute("aria-busy", "true");
    ui.modelRefresh.disabled = true;
    return fillModelSelect(ui.modelSelect, this.data.urls.models, {
      current: this.data.model,
      errorLabel: ui.modelError,
      refresh,
    }).finally(() => {
      ui.modelRefresh.removeAttribute("aria-busy");
      ui.modelRefresh.disabled = false;
    });
  }

  // ----- settings panel -----

  fillSettings(conversation) {
    const fields = ui.settingsForm.elements;
    const params = conversation.params || {};
    fields.system_prompt.value = conversation.system_prompt || "";
    for (const name of PARAM_NAMES) fields[name].value = params[name] ?? "";
    fields.stop.value = Array.isArray(params.stop) ? params.stop.join("\n") : params.stop || "";
  }

  clearFieldErrors() {
    for (const list of document.querySelectorAll("[data-field-errors]")) list.remove();
    for (const field of [...ui.settingsForm.elements, ui.modelSelect]) {
      if (field.getAttribute("aria-invalid") === "true") {
        field.removeAttribute("aria-invalid");
        field.removeAttribute("aria-describedby");
      }
    }
  }

  showFieldErrors(errors) {
    for (const [name, messages] of Object.entries(errors || {})) {
      const field = name === "model" ? ui.modelSelect : ui.settingsForm.elements[name];
      const list = document.createElement("ul");
      list.className = "errorlist";
      list.dataset.fieldErrors = "";
      list.id = `settings-${name}-errors`;
      for (const text of [].concat(messages)) {
        const item = document.createElement("li");
        item.textContent = text;
        list.append(item);
      }
      if (field instanceof HTMLElement) {
        field.setAttribute("aria-invalid", "true");
        field.setAttribute("aria-describedby", list.id);
        (name === "model" ? ui.modelError : field).after(list);
      } else {
        ui.settingsForm.prepend(list); // __all__, or a field this form does not show
      }
    }
  }

  /** POST the panel (and the model picker, which belongs to the same form). */
  async saveSettings() {
    this.clearFieldErrors();
    ui.settingsStatus.textContent = t("saving", "Saving…");
    const result = await postForm(this.data.urls.settings, new FormData(ui.settingsForm));
    const saved = result.data?.conversation;
    if (result.ok && saved) {
      this.data.model = saved.model ?? this.data.model;
      this.data.system_prompt = saved.system_prompt ?? this.data.system_prompt;
      this.data.params = saved.params ?? this.data.params;
      ui.settingsStatus.textContent = t("saved", "Saved.");
      return true;
    }
    // Keep every typed value; say what is wrong next to it.
    const errors = result.data?.errors;
    if (errors) {
      this.showFieldErrors(errors);
      if (Object.keys(errors).some((name) => name !== "model")) this.openSettings(true);
      ui.settingsStatus.textContent = t("fix_errors", "Please correct the errors.");
    } else {
      ui.settingsStatus.textContent = resultError(result);
    }
    return false;
  }

  openSettings(open) {
    const wasOpen = !ui.settingsPanel.hidden;
    ui.settingsPanel.hidden = !open;
    ui.settingsToggle.setAttribute("aria-expanded", String(open));
    if (open && !wasOpen) ui.settingsPanel.querySelector("textarea, input")?.focus();
  }

  // ----- menu, rename, archive -----

  closeMenu() {
    if (ui.menu) ui.menu.open = false;
  }

  showPageStatus(text) {
    ui.pageStatus.textContent = text;
    ui.pageStatus.hidden = !text;
  }

  openRename(open) {
    ui.renameForm.hidden = !open;
    if (open) {
      const input = ui.renameForm.elements.title;
      input.value = this.data.title || ui.title.textContent.trim();
      input.focus();
      input.select();
    } else {
      ui.menu?.querySelector("summary")?.focus();
    }
  }

  async submitRename() {
    const title = ui.renameForm.elements.title.value;
    const result = await postForm(this.data.urls.rename, { title });
    if (!result.ok) {
      this.showPageStatus(resultError(result));
      return;
    }
    ui.renameForm.hidden = true;
    this.onRenamed(result.data.title || title);
    ui.title.focus();
  }

  async toggleArchive() {
    const archive = ui.archiveButton.dataset.archived !== "true";
    const result = await postForm(this.data.urls.archive, { archived: archive ? "1" : "0" });
    if (!result.ok) {
      this.showPageStatus(resultError(result));
      return;
    }
    const archived = Boolean(result.data.archived);
    ui.archiveButton.dataset.archived = String(archived);
    ui.archiveButton.textContent = archived ? t("unarchive", "Unarchive") : t("archive", "Archive");
    this.showPageStatus(
      archived
        ? t("archived", "Archived: this conversation is no longer listed.")
        : t("unarchived", "Back in the list."),
    );
  }

  bind() {
    ui.modelRefresh.addEventListener("click", () => this.loadModels(true));
    ui.modelSelect.addEventListener("change", () => this.saveSettings());
    ui.settingsToggle.addEventListener("click", () => this.openSettings(ui.settingsPanel.hidden));
    ui.settingsForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveSettings();
    });
    ui.settingsForm.querySelector("[data-settings-close]")?.addEventListener("click", () => {
      this.openSettings(false);
      ui.settingsToggle.focus();
    });
    ui.renameButton.addEventListener("click", () => {
      this.closeMenu();
      this.openRename(true);
    });
    ui.renameForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitRename();
    });
    const cancel = ui.renameForm.querySelector("[data-rename-cancel]");
    cancel?.addEventListener("click", () => this.openRename(false));
    ui.archiveButton.addEventListener("click", () => {
      this.closeMenu();
      this.toggleArchive();
    });
    // A click anywhere else closes the menu, as menus do.
    document.addEventListener("click", (event) => {
      if (ui.menu?.open && !ui.menu.contains(event.target)) this.closeMenu();
    });
  }

  /** Escape closes the open menu or rename form (true when it did). */
  closeOnEscape(focused) {
    if (ui.menu?.open) {
      this.closeMenu();
      ui.menu.querySelector("summary").focus();
      return true;
    }
    if (!ui.renameForm.hidden && ui.renameForm.contains(focused)) {
      this.openRename(false);
      return true;
    }
    return false;
  }

  /** Escape inside the settings panel closes it (asked only when no reply was stopped). */
  closeSettingsOnEscape(focused) {
    if (ui.settingsPanel.hidden || !ui.settingsPanel.contains(focused)) return false;
    this.openSettings(false);
    ui.settingsToggle.focus();
    return true;
  }
}
