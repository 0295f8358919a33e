// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Filter the catalog as the admin types (the search form still submits ?q= without JavaScript).
  function setUpFilter() {
    var input = document.querySelector("input[data-filter]");
    if (!input) return;
    var cards = Array.prototype.slice.call(document.querySelectorAll(input.getAttribute("data-filter")));
    var count = document.getElementById("search-count");
    var none = document.getElementById("no-matches");
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      cards.forEach(function (card) {
        var text = card.getAttribute("data-search") || "";
        var match = words.every(function (w) { return text.indexOf(w) !== -1; });
        card.hidden = !match;
        if (match) shown += 1;
      });
      document.querySelectorAll(".catalog-group").forEach(function (group) {
        group.hidden = !group.querySelector(".catalog-card:not([hidden])");
      });
      if (count) count.textContent = shown + (shown === 1 ? " integration" : " integrations");
      if (none) none.hidden = shown !== 0;
    });
  }

  // Inside the CRM's iframe, a provider's sign-in page refuses to be framed: open OAuth in a new window.
  function setUpOAuthForms() {
    var framed = window.top !== window.self;
    if (!framed) return;
    document.querySelectorAll("form[data-oauth=true]").forEach(function (form) {
      form.setAttribute("target", "_blank");
    });
  }

  // Back in the popup after OAuth: refresh the marketplace that opened it and close this window.
  function setUpPopupReturn() {
    var link = document.querySelector("[data-close-popup]");
    if (!link || !window.opener) return;
    link.addEventListener("click", function (event) {
      try { window.opener.location.reload(); } catch (e) { return; }
      event.preventDefault();
      window.close();
    });
  }

  // The mapping editor: show only the options of the chosen transform (all of them show without JavaScript).
  function setUpTransformOptions() {
    var select = document.getElementById("m-transform");
    if (!select) return;
    var parts = document.querySelectorAll("[data-transform]");
    function show() {
      parts.forEach(function (part) { part.hidden = part.getAttribute("data-transform") !== select.value; });
    }
    select.addEventListener("change", show);
    show();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpFilter();
    setUpTransformOptions();
    setUpOAuthForms();
    setUpPopupReturn();
  });
})();
