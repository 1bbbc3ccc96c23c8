// The only script: "select all" on the referral form. Loaded from /static; the CSP forbids inline script.
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (!all) return;
  all.checked = true;
  all.addEventListener("change", () => {
    document.querySelectorAll("input.pick").forEach((box) => { box.checked = all.checked; });
  });
});
