// Call handoffs page: progressive enhancement only. Every form already works without
// this script (POST, then redirect); it hides fields that do not apply to the chosen
// method or transfer mode, adds and removes SIP header, route and opening-hours rows, and
// confirms deletes in a <dialog>.
"use strict";

document.documentElement.classList.add("js");

function isBlankRow(row) {
  return Array.from(row.querySelectorAll("input")).every((input) => input.value.trim() === "");
}

// The value a rule names: the method (also when it is locked), the checked radio of a
// group, or a select's value.
function controlValue(form, name) {
  if (name === "method") return form.querySelector("[data-method]")?.value ?? "";
  const checked = form.querySelector(`input[name="${name}"]:checked`);
  if (checked) return checked.value;
  return form.querySelector(`select[name="${name}"]`)?.value ?? "";
}

// data-show-if="transfer_mode=consult" or "method=sip_invite|transfer_mode=consult": shown
// when any clause holds.
function ruleHolds(form, rule) {
  return rule.split("|").some((clause) => {
    const [name, values] = clause.split("=");
    return values.split(" ").includes(controlValue(form, name));
  });
}

// Fields that apply only to some methods, transfer modes, or to set opening hours show
// only there. A hidden advanced field (data-show-if) is disabled too, so the form sends it
// as unset instead of saving (or being refused for) a value nobody can see; the server
// already ignores a hidden route, encryption or ring timeout (data-show-for), and keeps
// them as typed should the method change back.
function showFieldsThatApply(form) {
  const conditional = Array.from(form.querySelectorAll("[data-show-for], [data-show-if]"));
  if (!conditional.length) return;
  const update = () => {
    conditional.forEach((field) => {
      field.hidden = field.dataset.showFor !== undefined
        ? !field.dataset.showFor.split(" ").includes(controlValue(form, "method"))
        : !ruleHolds(form, field.dataset.showIf);
    });
    form.querySelectorAll("[data-show-if]").forEach((field) => {
      field.querySelectorAll("input, select, textarea").forEach((control) => {
        control.disabled = control.closest("[hidden]") !== null;
      });
    });
  };
  form.addEventListener("change", update);
  update();
}

// Simultaneous ring: "Route 2"… rows added on demand, up to Twilio's limit.
function manageRouteRows(form) {
  const rows = form.querySelector("[data-route-rows]");
  const template = form.querySelector("#route-row-template");
  const add = form.querySelector("[data-add-route]");
  if (!rows || !template || !add) return;
  const renumber = () => {
    Array.from(rows.children).forEach((row, index) => {
      const n = index + 2;
      const input = row.querySelector("input");
      const label = row.querySelector("label");
      const remove = row.querySelector("[data-remove-route]");
      input.id = `route-${n}`;
      label.htmlFor = input.id;
      label.textContent = `Route ${n}`;
      remove.setAttribute("aria-label", `Remove route ${n}`);
      remove.hidden = false;
    });
    add.hidden = rows.children.length >= Number(rows.dataset.max);
  };
  rows.querySelectorAll("[data-route-row]").forEach((row) => { if (isBlankRow(row)) row.remove(); });
  add.addEventListener("click", () => {
    rows.append(template.content.cloneNode(true));
    renumber();
    rows.lastElementChild.querySelector("input").focus();
  });
  rows.addEventListener("click", (event) => {
    const remove = event.target.closest("[data-remove-route]");
    if (!remove) return;
    remove.closest("[data-route-row]").remove();
    renumber();
    add.focus();
  });
  renumber();
}

// The weekly editor: a day with no ranges reads "Closed"; ranges are added and removed
// per day, and Monday's can be copied to the other weekdays.
function manageOpeningHours(form) {
  const template = form.querySelector("#range-template");
  if (!template) return;
  const days = new Map();
  form.querySelectorAll("[data-day]").forEach((day) => {
    const ranges = day.querySelector("[data-ranges]");
    const add = day.querySelector("[data-add-range]");
    const { day: key, dayName: name } = day.dataset;
    const renumber = () => {
      const all = Array.from(ranges.querySelectorAll("[data-range]"));
      all.forEach((range, index) => {
        const suffix = index === 0 ? "" : `, range ${index + 1}`;
        const [opens, closes] = range.querySelectorAll("input");
        opens.name = `hours_${key}_open`;
        closes.name = `hours_${key}_close`;
        opens.setAttribute("aria-label", `${name} opens${suffix}`);
        closes.setAttribute("aria-label", `${name} closes${suffix}`);
        const remove = range.querySelector("[data-remove-range]");
        remove.setAttribute("aria-label", `Remove ${name} range ${index + 1}`);
        remove.hidden = false;
      });
      day.querySelector("[data-closed]").hidden = all.length > 0;
      const copy = day.querySelector("[data-copy-weekdays]");
      if (copy) copy.hidden = all.length === 0;
    };
    const append = (opens = "", closes = "") => {
      ranges.append(template.content.cloneNode(true));
      const [first, second] = ranges.lastElementChild.querySelectorAll("input");
      first.value = opens;
      second.value = closes;
      renumber();
      return first;
    };
    ranges.querySelectorAll("[data-range]").forEach((range) => { if (isBlankRow(range)) range.remove(); });
    add.hidden = false;
    add.addEventListener("click", () => append().focus());
    ranges.addEventListener("click", (event) => {
      const remove = event.target.closest("[data-remove-range]");
      if (!remove) return;
      remove.closest("[data-range]").remove();
      renumber();
      add.focus();
    });
    renumber();
    days.set(key, { ranges, append, renumber });
  });
  const copy = form.querySelector("[data-copy-weekdays]");
  if (!copy || !days.has("mon")) return;
  copy.addEventListener("click", () => {
    const monday = Array.from(days.get("mon").ranges.querySelectorAll("[data-range]"))
      .map((range) => Array.from(range.querySelectorAll("input"), (input) => input.value));
    ["tue", "wed", "thu", "fri"].forEach((key) => {
      const day = days.get(key);
      day.ranges.querySelectorAll("[data-range]").forEach((range) => range.remove());
      monday.forEach(([opens, closes]) => day.append(opens, closes));
      day.renumber();
    });
  });
}

// Hours not set yet start in the browser's time zone rather than UTC.
function guessTimeZone(form) {
  const select = form.querySelector("#timezone");
  if (!select || select.hasAttribute("data-chosen")) return;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && Array.from(select.options).some((option) => option.value === zone)) select.value = zone;
}

function manageHeaderRows(form) {
  const rows = form.querySelector("[data-header-rows]");
  const template = form.querySelector("#header-row-template");
  const add = form.querySelector("[data-add-header]");
  if (!rows || !template || !add) return;
  // The server offers spare blank rows for browsers without JavaScript; here rows are
  // added on demand instead. A row with an error stays, so its message stays visible.
  rows.querySelectorAll("[data-header-row]").forEach((row) => {
    if (isBlankRow(row) && !row.querySelector(".field__error")) row.remove();
  });
  rows.querySelectorAll("[data-remove-header]").forEach((button) => { button.hidden = false; });
  form.querySelectorAll("[data-no-js-hint]").forEach((hint) => { hint.hidden = true; });
  add.hidden = false;
  add.addEventListener("click", () => {
    rows.append(template.content.cloneNode(true));
    rows.lastElementChild.querySelector("input").focus();
  });
  rows.addEventListener("click", (event) => {
    const remove = event.target.closest("[data-remove-header]");
    if (remove) remove.closest("[data-header-row]").remove();
  });
}

// The Delete link leads to a confirm page; with <dialog> support it opens a dialog that
// posts to the same URL. Its button stays disabled until the exact name is typed (the
// server checks again).
function confirmDeletes() {
  const dialog = document.getElementById("delete-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
  const form = dialog.querySelector("form");
  const typed = dialog.querySelector("[name=confirm]");
  const submit = dialog.querySelector("[type=submit]");
  let expected = null;

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-delete]");
    if (!link) return;
    event.preventDefault();
    expected = link.dataset.name;
    form.action = link.href;
    dialog.querySelectorAll("[data-slot=name]").forEach((slot) => { slot.textContent = `“${expected}”`; });
    typed.value = "";
    submit.disabled = true;
    link.closest("details")?.removeAttribute("open");
    dialog.showModal();
    typed.focus();
  });
  typed.addEventListener("input", () => { submit.disabled = typed.value !== expected; });
  dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
}

// One actions menu open at a time; a click elsewhere or Escape closes it.
function tidyMenus() {
  const menus = Array.from(document.querySelectorAll("details.menu"));
  menus.forEach((menu) => menu.addEventListener("toggle", () => {
    if (menu.open) menus.forEach((other) => { if (other !== menu) other.open = false; });
  }));
  document.addEventListener("click", (event) => {
    menus.forEach((menu) => { if (menu.open && !menu.contains(event.target)) menu.open = false; });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") menus.forEach((menu) => { menu.open = false; });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-handoff-form]").forEach((form) => {
    manageHeaderRows(form);
    manageRouteRows(form);
    manageOpeningHours(form);
    guessTimeZone(form);
    form.querySelectorAll("[data-no-js-hint]").forEach((hint) => { hint.hidden = true; });
    showFieldsThatApply(form);
  });
  confirmDeletes();
  tidyMenus();
});
