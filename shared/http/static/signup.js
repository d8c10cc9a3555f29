// bealert signup: progressive enhancement only; the page works without it.
// 1. "Use my current location" fills the first address's point.
// 2. Before a code goes to a phone, a small proof of work (SHA-256 with
//    leading zero bits) is solved here, so bots pay for each attempt.
(function () {
  "use strict";
  var locate = document.getElementById("locate");
  if (locate && navigator.geolocation) {
    locate.hidden = false;
    locate.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(function (pos) {
        var lat = pos.coords.latitude.toFixed(5), lon = pos.coords.longitude.toFixed(5);
        document.querySelector("input[name=a0_lat]").value = lat;
        document.querySelector("input[name=a0_lon]").value = lon;
        document.getElementById("a0-located").textContent = locate.dataset.found + ": " + lat + ", " + lon;
      });
    });
  }

  function zeroBits(bytes) {
    var n = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { n += 8; continue; }
      return n + Math.clz32(bytes[i]) - 24;
    }
    return n;
  }

  async function solve(challenge, bits) {
    var enc = new TextEncoder();
    for (var nonce = 0; ; nonce++) {
      var digest = await crypto.subtle.digest("SHA-256", enc.encode(challenge + ":" + nonce));
      if (zeroBits(new Uint8Array(digest)) >= bits) return String(nonce);
    }
  }

  var form = document.getElementById("confirm-form");
  if (form && form.dataset.pow === "true" && window.crypto && crypto.subtle && window.fetch) {
    form.addEventListener("submit", function (ev) {
      if (form.elements.pow_nonce.value) return;
      ev.preventDefault();
      var status = document.getElementById("pow-status");
      status.textContent = form.dataset.working;
      form.querySelector("button").disabled = true;
      fetch("/v1/signup/challenge", { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (c) {
          return solve(c.challenge, c.bits).then(function (nonce) {
            form.elements.pow_challenge.value = c.challenge;
            form.elements.pow_nonce.value = nonce;
            form.submit();
          });
        })
        .catch(function () { form.submit(); });
    });
  }
})();
