/* What the templates cannot write without a style attribute, which the Content-Security-Policy
 * refuses (style-src 'self'): the shade of each confusion-matrix cell, given as
 * data-shade="0.42" (the opacity of its background) and set here as the --shade custom property
 * that app.css colours the cell with. Styles set from a script file are allowed. htmx.onLoad
 * runs it for the page and again for every partial htmx swaps in. */
(function () {
  "use strict";

  function shade(root) {
    root.querySelectorAll("[data-shade]").forEach(function (cell) {
      cell.style.setProperty("--shade", cell.getAttribute("data-shade"));
    });
  }

  if (window.htmx) {
    window.htmx.onLoad(shade);
  } else {
    document.addEventListener("DOMContentLoaded", function () {
      shade(document);
    });
  }
})();
