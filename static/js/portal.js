// The portal's small behaviours, here rather than in inline handlers or hx-on
// attributes: the Content-Security-Policy runs scripts from static/ only
// (docs/adr/0012-transport-security.md).
(function () {
  "use strict";

  // A form marked data-reset-after-request empties itself once htmx's request
  // succeeded (the note form: the text is on the timeline now).
  document.addEventListener("htmx:afterRequest", function (event) {
    const form = event.target.closest && event.target.closest("form[data-reset-after-request]");
    if (form && event.detail.successful) form.reset();
  });
})();
