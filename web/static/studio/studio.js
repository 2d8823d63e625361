// Call handoffs page: progressive enhancement only. Every form already works without
// this script (POST, then redirect); it hides fields that do not apply to the chosen
// method, adds and removes SIP header rows, and confirms deletes in a <dialog>.
"use strict";

document.documentElement.classList.add("js");

function isBlankRow(row) {
  return Array.from(row.querySelectorAll("input")).every((input) => input.value.trim() === "");
}

// Route is meaningless for SIP BYE; encryption and ring timeout only matter to SIP INVITE.
function showFieldsForMethod(form) {
  const method = form.querySelector("[data-method]");
  if (!method) return;
  const update = () => {
    form.querySelectorAll("[data-show-for]").forEach((field) => {
      field.hidden = !field.dataset.showFor.split(" ").includes(method.value);
    });
  };
  method.addEventListener("change", update);
  update();
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
    showFieldsForMethod(form);
    manageHeaderRows(form);
  });
  confirmDeletes();
  tidyMenus();
});
