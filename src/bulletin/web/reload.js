// bulletin serve --watch: reload when the site was rebuilt; show a failed rebuild's errors.
(function () {
  var seen = null;
  function show(errors) {
    var box = document.getElementById("bulletin-errors");
    if (!errors.length) { if (box) box.remove(); return; }
    if (!box) {
      box = document.createElement("pre");
      box.id = "bulletin-errors";
      box.setAttribute("role", "alert");
      box.style.cssText = "position:fixed;left:0;right:0;bottom:0;max-height:40%;overflow:auto;margin:0;" +
        "padding:12px 16px;background:#7f1d1d;color:#fff;font:13px/1.4 monospace;z-index:2147483647;white-space:pre-wrap";
      document.body.appendChild(box);
    }
    box.textContent = "bulletin: the last rebuild reported\n" + errors.join("\n");
  }
  function poll() {
    fetch("/__bulletin/status", {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (s) {
      if (seen !== null && s.build !== seen) { location.reload(); return; }
      seen = s.build;
      show(s.errors);
    }).catch(function () {}).finally(function () { setTimeout(poll, 700); });
  }
  poll();
})();
