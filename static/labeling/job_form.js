// The create-job form: scene tabs filter the type cards, the type filters the dataset list and
// the label columns, rows are added and removed, and the label counter counts down.
import { nextColor } from "./workbench/ui.js";

const form = document.querySelector("[data-job-form]");
if (form) {
  // getAttribute, not form.dataset: the form's "dataset" <select> shadows that property.
  const colorTypes = form.getAttribute("data-color-types").split(",");
  const teamTypes = form.getAttribute("data-team-types").split(",");
  const max = Number(form.getAttribute("data-max-labels"));
  const rows = form.querySelector("[data-label-rows]");
  const select = form.querySelector("[data-dataset-select]");
  const type = () => (form.querySelector("input[name=labeling_type]:checked") || {}).value;
  const columns = (t) => ({
    color: colorTypes.includes(t), kind: t === "text_triplet", relation: t === "text_triplet",
    category: t === "audio_segmentation", shortcut: t === "audio_classification",
    attributes: t === "object_detection" || t === "video",
  });
  function update() {
    const t = type();
    const card = form.querySelector(`input[value="${t}"]`)?.closest("[data-type-scene]");
    const scene = card ? card.dataset.typeScene : "image";
    form.querySelectorAll("[data-scene]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.scene === scene)));
    form.querySelectorAll("[data-type-scene]").forEach((c) => { c.hidden = c.dataset.typeScene !== scene; });
    for (const option of select.options) {
      if (!option.value) continue;
      option.hidden = option.disabled = option.dataset.labelType !== t;
      if (option.disabled && option.selected) select.value = "";
    }
    const show = columns(t);
    form.querySelectorAll("[data-col]").forEach((n) => { n.hidden = !show[n.dataset.col]; });
    form.querySelector("[data-option=team]").hidden = !teamTypes.includes(t);
    form.querySelector("[data-option=speech]").hidden = t !== "audio_segmentation";
    const existing = Number(select.selectedOptions[0]?.dataset.labels || 0);
    const named = [...rows.querySelectorAll("input[name=label_name]")].filter((i) => i.value.trim()).length;
    form.querySelector("[data-label-counter]").textContent = `${Math.max(0, max - existing - named)} more labels can be created.`;
  }
  form.querySelectorAll("[data-scene]").forEach((button) => button.addEventListener("click", () => {
    const first = form.querySelector(`[data-type-scene="${button.dataset.scene}"] input`);
    if (first) first.checked = true;
    update();
  }));
  form.addEventListener("change", update);
  form.addEventListener("input", update);
  form.querySelector("[data-add-label]").addEventListener("click", () => {
    rows.append(form.querySelector("[data-label-template]").content.cloneNode(true));
    // A new row starts in a colour the other rows do not use yet.
    const colors = [...rows.querySelectorAll("input[name=label_color]")];
    colors[colors.length - 1].value = nextColor(colors.slice(0, -1).map((i) => ({ color: i.value })));
    update();
    rows.lastElementChild.querySelector("input").focus();
  });
  rows.addEventListener("click", (e) => {
    if (e.target.closest("[data-remove-label]")) { e.target.closest("tr").remove(); update(); }
  });
  update();
}
