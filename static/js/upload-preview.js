// Job forms: show the pictures chosen in an image upload field before they are sent, so a
// wrong file is noticed here and not after the relay has worked on it. One module for every
// image field (Midjourney's uploads, face swap...): it finds them by their accept attribute.
const MAX_PREVIEWS = 5;

function previewBox(input) {
  let box = input.parentElement.querySelector("[data-upload-preview]");
  if (!box) {
    box = document.createElement("div");
    box.className = "actions";
    box.dataset.uploadPreview = "";
    box.dataset.testid = "upload-preview";
    input.after(box);
  }
  return box;
}

function show(input) {
  const box = previewBox(input);
  for (const img of box.querySelectorAll("img")) URL.revokeObjectURL(img.src);
  const files = [...(input.files || [])].filter((file) => file.type.startsWith("image/"));
  box.replaceChildren(
    ...files.slice(0, MAX_PREVIEWS).map((file) => {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(file);
      img.alt = file.name;
      img.height = 96;
      img.decoding = "async";
      return img;
    }),
  );
  box.hidden = files.length === 0;
}

for (const input of document.querySelectorAll("form.job-form input[type=file][accept*='image']")) {
  input.addEventListener("change", () => show(input));
  if (input.files && input.files.length) show(input); // a file kept by the browser on back
}
