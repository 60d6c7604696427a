// Live "n/max" counter under every textarea[data-counter] (the 0/256 description counter).
function attach(area) {
  if (area.dataset.counterReady) return;
  area.dataset.counterReady = "1";
  const max = Number(area.dataset.counter);
  const out = document.createElement("p");
  out.className = "help ds-counter";
  out.setAttribute("aria-live", "polite");
  out.dataset.testid = "char-counter";
  area.insertAdjacentElement("afterend", out);
  const update = () => {
    out.textContent = `${area.value.length}/${max}`;
    out.classList.toggle("ds-counter-full", area.value.length >= max);
  };
  area.addEventListener("input", update);
  update();
}

for (const area of document.querySelectorAll("textarea[data-counter]")) attach(area);
