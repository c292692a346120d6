// eventbus console: the live parts of the pages (counters, the tail, replay progress).
// No framework and no innerHTML: every value is put in the page with textContent, so text from
// an event stays text.
(function () {
  "use strict";

  var base = meta("console-base");
  var csrf = meta("csrf-token");

  function meta(name) {
    var found = document.querySelector('meta[name="' + name + '"]');
    return found ? found.getAttribute("content") : "";
  }

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) {
      if (key === "text") node.textContent = attributes[key];
      else if (key === "className") node.className = attributes[key];
      else node.setAttribute(key, attributes[key]);
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) node.appendChild(child);
    });
    return node;
  }

  function getJSON(path) {
    return fetch(base + path, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(
      function (answer) {
        if (!answer.ok) throw new Error("HTTP " + answer.status);
        return answer.json();
      }
    );
  }

  function poll(path, every, apply, status) {
    function once() {
      getJSON(path).then(
        function (data) {
          if (status) status.dataset.failed = "";
          apply(data);
        },
        function (error) {
          if (status) {
            status.textContent = "Could not refresh (" + error.message + "); trying again.";
            status.dataset.failed = "1";
          }
        }
      ).then(function () {
        window.setTimeout(once, every);
      });
    }
    window.setTimeout(once, every);
  }

  // -- topology: counters polled from /api/topology -----------------------------------------

  function counterText(counts) {
    return Object.keys(counts || {}).map(function (key) {
      return key + " " + counts[key];
    }).join(" · ");
  }

  // A node's counters in its box, as graph.compact draws them: the first four, then any other
  // that is not zero, two a line.
  function compact(counts) {
    var shown = [];
    Object.keys(counts || {}).forEach(function (key, index) {
      if (index < 4 || counts[key]) shown.push(key + " " + counts[key]);
    });
    var lines = [];
    for (var i = 0; i < Math.min(shown.length, 6); i += 2) lines.push(shown.slice(i, i + 2).join(" · "));
    return lines;
  }

  function topology(graph) {
    var status = document.getElementById("topology-status");
    var version = graph.getAttribute("data-version");
    var svg = "http://www.w3.org/2000/svg";
    poll("/api/topology", 2000, function (data) {
      document.querySelectorAll("[data-counters]").forEach(function (node) {
        node.textContent = counterText(data.counters[node.getAttribute("data-counters")]);
      });
      document.querySelectorAll("[data-node-counters]").forEach(function (text) {
        while (text.firstChild) text.removeChild(text.firstChild);
        compact(data.counters[text.getAttribute("data-node-counters")]).forEach(function (line, index) {
          var span = document.createElementNS(svg, "tspan");
          span.setAttribute("x", "8");
          span.setAttribute("dy", index ? "12" : "0");
          span.textContent = line;
          text.appendChild(span);
        });
      });
      graph.setAttribute("data-refreshed", String(Date.now()));
      if (data.version !== version) {
        status.textContent = "";
        status.appendChild(document.createTextNode("The topology changed since this page was drawn: "));
        status.appendChild(el("a", { href: window.location.pathname, text: "redraw it" }));
        status.appendChild(document.createTextNode("."));
      } else if (!status.dataset.failed) {
        status.textContent = "Counters as of " + new Date().toLocaleTimeString() + ".";
      }
    }, status);
  }

  // -- live tail over a WebSocket -------------------------------------------------------------

  function tail(form) {
    var rows = document.getElementById("tail-rows");
    var status = document.getElementById("tail-status");
    var filterError = document.getElementById("tail-filter-error");
    var busSelect = document.getElementById("tail-bus");
    var pattern = document.getElementById("tail-pattern");
    var pause = document.getElementById("tail-pause");
    var maxRows = parseInt(form.getAttribute("data-max-rows"), 10) || 300;
    var shown = new Map(); // "bus|id" -> {row, detail, deliveries, outcomes}
    var socket = null;
    var paused = false;
    var skipped = 0;
    var lost = 0;
    var received = 0;
    var retry = 1000;
    var serial = 0;

    function say(text) {
      status.textContent = text;
    }

    function summary() {
      var parts = [received + " events received"];
      if (paused) parts.push("paused, " + skipped + " not shown");
      if (lost) parts.push(lost + " lost because this page fell behind");
      say(parts.join("; ") + ".");
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      var url = scheme + "//" + window.location.host + base + "/ws/tail?bus=" + encodeURIComponent(busSelect.value);
      var mine = new WebSocket(url);
      socket = mine;
      say("Connecting…");
      mine.onopen = function () {
        retry = 1000;
        if (pattern.value.trim()) send({ type: "filter", pattern: pattern.value });
      };
      mine.onmessage = function (message) {
        if (mine !== socket) return;
        var data;
        try {
          data = JSON.parse(message.data);
        } catch (error) {
          return;
        }
        handle(data);
      };
      mine.onclose = function (closing) {
        if (mine !== socket) return;
        if (closing.code === 1008) {
          say("The server refused the tail: sign in again (reload the page).");
          return;
        }
        say("Disconnected; reconnecting…");
        window.setTimeout(connect, retry);
        retry = Math.min(retry * 2, 10000);
      };
    }

    function send(data) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(data));
    }

    function handle(data) {
      if (data.type === "hello") {
        form.setAttribute("data-connected", "1");
        say("Watching " + (data.buses.length ? data.buses.join(", ") : "no bus") + ": waiting for events.");
      } else if (data.type === "filter") {
        filterError.hidden = data.ok;
        filterError.textContent = data.ok ? "" : "Invalid pattern: " + data.error;
        form.setAttribute("data-filter", data.ok ? data.pattern : "invalid");
        if (data.ok) say(data.pattern ? "Showing only events matching " + data.pattern + "." : "Showing every event.");
      } else if (data.type === "lost") {
        lost += data.count;
        summary();
      } else if (data.type === "event") {
        received += 1;
        if (paused) {
          skipped += 1;
        } else {
          addRow(data);
        }
        summary();
      } else if (data.type === "outcome") {
        addOutcome(data);
      }
    }

    function addRow(data) {
      serial += 1;
      var key = data.bus + "|" + data.id;
      var detailId = "tail-detail-" + serial;
      var rules = el("div", { className: "rules-list" });
      if (data.rules.length === 0) rules.appendChild(el("span", { className: "pill none", text: "no rule" }));
      data.rules.forEach(function (rule) {
        rules.appendChild(el("span", { className: "pill", text: rule }));
      });
      var deliveries = el("div", { className: "rules-list" });
      var toggle = el("button", {
        type: "button",
        "aria-expanded": "false",
        "aria-controls": detailId,
        "aria-label": "Open event " + data.id,
        text: "Open",
      });
      var row = el("tr", { "data-event": data.id, "data-bus": data.bus }, [
        el("td", { text: data.time }),
        el("td", { text: data.bus }),
        el("td", { className: "source", text: data.source }),
        el("td", { className: "detail-type", text: data.detail_type }),
        el("td", {}, [rules]),
        el("td", {}, [deliveries]),
        el("td", {}, [toggle]),
      ]);
      var inputs = el("div", {});
      data.inputs.forEach(function (input) {
        inputs.appendChild(el("h3", { text: "Target " + input.rule + " / " + input.target }));
        if (input.error) inputs.appendChild(el("pre", { className: "problem", text: input.error }));
        else inputs.appendChild(el("pre", { className: "json", text: input.payload }));
      });
      if (data.inputs.length === 0) inputs.appendChild(el("p", { className: "note", text: "No target: nothing is sent." }));
      var outcomeList = el("ul", { className: "outcomes" });
      var detail = el("tr", { className: "detail", id: detailId, hidden: "" }, [
        el("td", { colspan: "7" }, [
          el("div", { className: "detail-grid" }, [
            el("section", {}, [el("h3", { text: "Event" }), el("pre", { className: "json event-json", text: data.event })]),
            el("section", {}, [el("h3", { text: "What each target is sent" }), inputs]),
            el("section", {}, [el("h3", { text: "Deliveries" }), outcomeList]),
          ]),
        ]),
      ]);
      toggle.addEventListener("click", function () {
        var open = toggle.getAttribute("aria-expanded") === "true";
        toggle.setAttribute("aria-expanded", open ? "false" : "true");
        toggle.setAttribute("aria-label", (open ? "Open" : "Close") + " event " + data.id);
        toggle.textContent = open ? "Open" : "Close";
        detail.hidden = open;
      });
      rows.insertBefore(detail, rows.firstChild);
      rows.insertBefore(row, detail);
      shown.set(key, { row: row, detail: detail, deliveries: deliveries, outcomes: outcomeList, last: {} });
      while (shown.size > maxRows) {
        var oldest = shown.keys().next().value;
        var gone = shown.get(oldest);
        shown.delete(oldest);
        gone.row.remove();
        gone.detail.remove();
      }
    }

    function addOutcome(data) {
      var found = shown.get(data.bus + "|" + data.id);
      if (!found) return;
      var address = data.rule + "/" + data.target;
      var pill = found.last[address];
      if (!pill) {
        pill = el("span", {});
        found.last[address] = pill;
        found.deliveries.appendChild(pill);
      }
      pill.className = "pill " + data.kind;
      pill.textContent = address + ": " + data.kind;
      pill.setAttribute("data-outcome", data.kind);
      var text = address + ": " + data.kind + " (attempt " + data.attempt + ")";
      if (data.error_code) text += " " + data.error_code;
      if (data.reason) text += ": " + data.reason;
      if (data.delay !== null && data.delay !== undefined) text += ", next attempt in " + data.delay + " s";
      found.outcomes.appendChild(el("li", { text: text }));
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send({ type: "filter", pattern: pattern.value });
    });
    busSelect.addEventListener("change", function () {
      var old = socket;
      socket = null;
      if (old) old.close();
      connect();
    });
    pause.addEventListener("click", function () {
      paused = !paused;
      skipped = 0;
      pause.setAttribute("aria-pressed", paused ? "true" : "false");
      pause.textContent = paused ? "Resume" : "Pause";
      summary();
    });
    document.getElementById("tail-clear").addEventListener("click", function () {
      shown.clear();
      while (rows.firstChild) rows.removeChild(rows.firstChild);
    });
    connect();
  }

  // -- replays: progress polled from /api/replays ----------------------------------------------

  function replays(table) {
    var status = document.getElementById("replays-status");
    poll("/api/replays", 2000, function (data) {
      var known = new Set();
      data.replays.forEach(function (replay) {
        known.add(replay.name);
        var row = Array.prototype.find.call(table.querySelectorAll("tr[data-replay]"), function (r) {
          return r.getAttribute("data-replay") === replay.name;
        });
        if (!row) {
          status.textContent = "Replay " + replay.name + " started elsewhere: reload to see it.";
          return;
        }
        row.querySelector(".replay-state").textContent = replay.state + (replay.reason ? " " + replay.reason : "");
        var bar = row.querySelector(".replay-progress");
        bar.value = replay.progress;
        bar.textContent = replay.progress + "%";
        row.querySelector(".replay-count").textContent = replay.count;
        row.querySelector(".replay-last").textContent = replay.last;
        if (!replay.cancellable) {
          var cancel = row.querySelector("form");
          if (cancel) cancel.remove();
        }
      });
      table.setAttribute("data-refreshed", String(Date.now()));
    }, status);
  }

  function start() {
    var graph = document.getElementById("topology");
    if (graph) topology(graph);
    var form = document.getElementById("tail-form");
    if (form) tail(form);
    var table = document.getElementById("replays");
    if (table) replays(table);
    // Results of a form post: move the keyboard focus to them.
    var result = document.querySelector(".result");
    if (result) result.focus();
    document.documentElement.setAttribute("data-console-ready", "1");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  void csrf;
})();
