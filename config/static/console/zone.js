// Every console page (the login page included) stores the browser's time zone in the cookie
// the support pages' console.js uses: the server shows times in it from the next page on
// (config/admin_display.py). No reload here, unlike console.js: this page may answer a POST,
// and every time on it is labelled with its zone anyway.
(function () {
  "use strict";
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone) return;
  var current = (document.cookie.match(/(?:^|; )console_tz=([^;]*)/) || [])[1];
  if (current && decodeURIComponent(current) === zone) return;
  document.cookie = "console_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
})();
