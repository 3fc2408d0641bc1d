/* The dataset graphs page (mlmanager/datasets/views_graphs.py).
 *
 * Each element with data-figure-url gets its figure from the API (the session's cookie
 * authenticates it) and is drawn with Plotly.js, served by the app. The sample's size goes in
 * the paragraph after it. The form shows only the fields the chosen type takes (from
 * data-graph-types, the list GET /api/v1/graph_types/ gives) and marks those it needs; without
 * this script every field shows and the server says what is wrong.
 */
(function () {
  "use strict";

  // Plotly.js (through d3) sets a few `style` attributes (a colour bar, a heatmap's image),
  // which the Content-Security-Policy (style-src 'self') refuses as inline styles. The same
  // declarations set through the CSSOM are allowed, so on this page setting the attribute
  // sets them that way instead.
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (typeof name === "string" && name.toLowerCase() === "style" && this.style) {
      this.style.cssText = String(value);
      return;
    }
    setAttribute.call(this, name, value);
  };

  function formatNumber(value) {
    return Number(value).toLocaleString(document.documentElement.lang || undefined);
  }

  function showError(element, text) {
    var message = document.createElement("p");
    message.className = "error-text";
    message.setAttribute("data-testid", "graph-error");
    message.textContent = text;
    element.replaceChildren(message);
  }

  function draw(element) {
    var sample = element.nextElementSibling;
    fetch(element.getAttribute("data-figure-url"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (answer) {
        var errorText = element.getAttribute("data-error-text");
        if (!answer.ok) {
          var reason = answer.body && answer.body.error ? answer.body.error.message : "";
          showError(element, errorText + " " + reason);
          return;
        }
        var figure = answer.body;
        element.replaceChildren();
        window.Plotly.newPlot(element, figure.data, figure.layout, {
          responsive: true,
          displaylogo: false,
        });
        if (sample && figure.sample) {
          sample.textContent = element
            .getAttribute("data-rows-text")
            .replace("%(used)s", formatNumber(figure.sample.rows_used))
            .replace("%(total)s", formatNumber(figure.sample.rows_total));
        }
      })
      .catch(function (error) {
        showError(element, element.getAttribute("data-error-text") + " " + error);
      });
  }

  function setUpForm(form) {
    var types = {};
    JSON.parse(form.getAttribute("data-graph-types")).forEach(function (type) {
      types[type.id] = type;
    });
    var select = form.querySelector("select[name=type]");
    var description = form.querySelector("[data-graph-description]");
    function update() {
      var type = types[select.value];
      if (!type) return;
      if (description) description.textContent = type.description;
      form.querySelectorAll("[data-graph-field]").forEach(function (label) {
        var field = label.getAttribute("data-graph-field");
        var allowed = field === "columns" ? type.takes_columns : type.fields.indexOf(field) >= 0;
        label.hidden = !allowed;
        var input = label.querySelector("select, input");
        if (input) {
          input.disabled = !allowed;
          input.required = type.required.indexOf(field) >= 0;
        }
      });
    }
    select.addEventListener("change", update);
    update();
  }

  function start() {
    document.querySelectorAll("[data-figure-url]").forEach(draw);
    document.querySelectorAll("form[data-graph-types]").forEach(setUpForm);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
