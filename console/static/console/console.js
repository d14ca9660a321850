// The support console's few behaviours. No build step, no dependencies.
(function () {
  "use strict";
  var TZ_COOKIE = "console_tz";

  // The viewer's time zone is the browser's: the server renders times in it from the next
  // page on (first visit: reload once so the first page already does).
  function syncTimeZone() {
    var zone;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
    if (!zone) return;
    var current = (document.cookie.match(/(?:^|; )console_tz=([^;]*)/) || [])[1];
    if (current && decodeURIComponent(current) === zone) return;
    document.cookie = TZ_COOKIE + "=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
    if (!current && !sessionStorage.getItem("console_tz_reloaded")) {
      sessionStorage.setItem("console_tz_reloaded", "1");
      location.reload();
    }
  }

  function rowLinks() {
    document.querySelectorAll("tr.row-link").forEach(function (row) {
      row.addEventListener("click", function (event) {
        if (event.target.closest("a, button, input, select")) return;
        location.href = row.dataset.href;
      });
    });
  }

  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = document.querySelector(button.dataset.copy).textContent.trim();
        var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done);
        } else {
          var area = document.createElement("textarea");
          area.value = text; document.body.appendChild(area); area.select();
          document.execCommand("copy"); area.remove(); done();
        }
      });
    });
  }

  function imageToggles() {
    document.querySelectorAll(".load-images").forEach(function (toggle) {
      toggle.addEventListener("change", function () {
        var frame = toggle.closest(".channel-card").querySelector("iframe.email-preview");
        frame.srcdoc = toggle.checked ? frame.dataset.srcdocImages : frame.dataset.srcdocBlocked;
      });
    });
  }

  // While the notification is `received`, ask for new events and add them in time order;
  // stop at a final status (or after an hour, so a forgotten tab does not poll forever).
  function liveTimeline() {
    var page = document.querySelector("[data-poll-url]");
    if (!page) return;
    var timeline = document.getElementById("timeline");
    var last = page.dataset.lastEvent || "0";
    var interval = 1500, stopAt = Date.now() + 3600 * 1000;
    function insert(html) {
      var holder = document.createElement("ol");
      holder.innerHTML = html.trim();
      var line = holder.firstElementChild;
      if (!line || timeline.querySelector('[data-event-id="' + line.dataset.eventId + '"]')) return;
      line.classList.add("fresh");
      var before = Array.prototype.find.call(timeline.children, function (other) {
        return other.dataset.occurred > line.dataset.occurred;
      });
      timeline.insertBefore(line, before || null);
    }
    function stop() {
      var live = document.getElementById("n-live");
      if (live) { live.textContent = "● final"; live.classList.add("stopped"); }
    }
    function poll() {
      fetch(page.dataset.pollUrl + (page.dataset.pollUrl.indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(last), {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { if (!response.ok) throw new Error(response.status); return response.json(); })
        .then(function (data) {
          data.lines.forEach(insert);
          last = String(data.last_event_id);
          var status = document.getElementById("n-status");
          status.textContent = data.status_label;
          status.className = "badge big tone-" + data.status_tone;
          if (data.final || Date.now() > stopAt) { stop(); return; }
          setTimeout(poll, interval);
        })
        .catch(function () { interval = Math.min(interval * 2, 30000); setTimeout(poll, interval); });
    }
    setTimeout(poll, interval);
  }

  document.addEventListener("DOMContentLoaded", function () {
    syncTimeZone(); rowLinks(); copyButtons(); imageToggles(); liveTimeline();
  });
})();
