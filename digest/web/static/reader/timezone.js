// Pre-select the reader's own time zone, as the browser knows it, in the
// <select data-guess-zone> of the sign-up and preferences pages. Without JavaScript the
// select keeps what the server chose (the operator's zone, or the reader's saved one).
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (typeof zone !== "string" || !/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) {
    return;
  }
  var selects = document.querySelectorAll("select[data-guess-zone]");
  for (var i = 0; i < selects.length; i++) {
    var select = selects[i];
    for (var j = 0; j < select.options.length; j++) {
      if (select.options[j].value === zone) {
        select.value = zone;
        break;
      }
    }
  }
})();
