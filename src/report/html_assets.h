// The CSS and the script inlined into every report.html (report/html_report.h). Kept here, not
// fetched or vendored: the page must open offline, and there is nothing to build.
//
// The script reads the JSON block <script id="qs-data"> (objectives, metrics, per-layer
// configurations, per-layer numbers) and:
//   - shows a tooltip over any element with data-t (trial number, values, metrics, formats);
//   - on click, selects that trial: every element of it gets class "sel", and the per-layer
//     table (#layer-table) is filled with its formats and numbers;
//   - selects data.initial on load, then sets <body data-ready="1"> (tests wait for it).
#pragma once

namespace qsearch::report {

inline constexpr const char* kHtmlCss = R"CSS(
body{font:14px/1.4 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:16px 24px;color:#222;
  background:#fff}
h1{font-size:20px;margin:0 0 8px}h2{font-size:17px;margin:24px 0 6px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:12px 0 4px}
table.kv th{text-align:left;padding:1px 12px 1px 0;color:#555;font-weight:600;vertical-align:top}
table.kv td{font-family:"DejaVu Sans Mono",monospace;font-size:13px;word-break:break-all}
.grid{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0}
.note{color:#555;font-size:13px;margin:2px 0 8px}
svg text{font-family:"DejaVu Sans",sans-serif}
svg .title{font-size:13px;font-weight:600}svg .tl{font-size:11px;fill:#333}
svg .al{font-size:12px;fill:#222}svg .ct{font-size:11px;fill:#111;pointer-events:none}
svg .frame{fill:#fafafa;stroke:#bbb}svg .tick{stroke:#999}
.pts circle{fill:#1f77b4;fill-opacity:.45;stroke:none;cursor:pointer}
.pts circle:hover{fill-opacity:1;stroke:#000}
.pts circle.sel{fill:#ff7f0e;fill-opacity:1;stroke:#000;stroke-width:1.5;r:5px}
path.front,path.best{fill:none;stroke:#d62728;stroke-width:1.6;pointer-events:none}
path.best{stroke:#2ca02c}path.hv{fill:none;stroke:#9467bd;stroke-width:2;pointer-events:none}
path.ref-front{fill:none;stroke:#000;stroke-width:1.4;stroke-dasharray:5 3;pointer-events:none}
path.curve{fill:none;stroke-width:2;pointer-events:none}
g.row{cursor:pointer}g.row.sel rect{stroke:#000;stroke-width:2}
rect.imp-bar{fill:#1f77b4}
table.grid-table{border-collapse:collapse;font-size:13px}
table.grid-table th,table.grid-table td{border:1px solid #ddd;padding:2px 8px;text-align:right}
table.grid-table td:first-child,table.grid-table td.fmt{text-align:left}
table.grid-table td.fmt{font-family:"DejaVu Sans Mono",monospace;font-size:12px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:6px}
#tip{position:fixed;pointer-events:none;background:#fffff4;border:1px solid #999;padding:4px 8px;
  font:12px/1.35 "DejaVu Sans Mono",monospace;white-space:pre;z-index:10;max-width:640px}
)CSS";

inline constexpr const char* kHtmlJs = R"JS(
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('qs-data').textContent);
  var byNum = new Map();
  D.trials.forEach(function (t) { byNum.set(t[0], t); });
  var tip = document.getElementById('tip');
  function fmt(v) {
    if (v === null || v === undefined) return '-';
    if (typeof v !== 'number') return String(v);
    if (v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3)) return v.toExponential(4);
    return String(Number(v.toPrecision(6)));
  }
  function describe(n) {
    var t = byNum.get(n);
    if (!t) return 'trial ' + n;
    var lines = ['trial ' + n];
    D.objectives.forEach(function (o, k) { lines.push(o + ' = ' + fmt(t[1][k])); });
    D.metrics.forEach(function (m, k) {
      if (D.objectives.indexOf(m) < 0 && t[2][k] !== null) lines.push('  ' + m + ' = ' + fmt(t[2][k]));
    });
    D.layers.forEach(function (l, j) { lines.push(l + ': ' + D.cfgs[t[3][j]]); });
    return lines.join('\n');
  }
  function target(e) {
    var el = e.target;
    while (el && el.getAttribute && !el.hasAttribute('data-t')) el = el.parentNode;
    if (!el || !el.getAttribute) return null;
    var n = Number(el.getAttribute('data-t'));
    return n >= 0 ? n : null;
  }
  function cell(tr, text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  function fillTable(n) {
    var table = document.getElementById('layer-table');
    if (!table) return;
    var head = table.tHead, body = table.tBodies[0];
    head.textContent = '';
    body.textContent = '';
    var t = byNum.get(n);
    document.getElementById('sel-title').textContent = t ? describe(n).split('\n').slice(0, 1 + D.objectives.length).join(', ') : 'none';
    if (!t) return;
    var rows = D.layer_numbers[String(n)];
    var hr = document.createElement('tr');
    var cols = rows ? ['layer', 'formats', 'params', 'packed bytes', 'MACs', 'BitOPs'] : ['key', 'formats'];
    cols.forEach(function (c) { var th = document.createElement('th'); th.textContent = c; hr.appendChild(th); });
    head.appendChild(hr);
    if (rows) {
      rows.forEach(function (r) {
        var tr = document.createElement('tr');
        cell(tr, r[0]); cell(tr, r[1], 'fmt');
        for (var i = 2; i < 6; ++i) cell(tr, String(r[i]));
        tr.setAttribute('data-layer', r[0]);
        body.appendChild(tr);
      });
    } else {
      D.layers.forEach(function (l, j) {
        var tr = document.createElement('tr');
        cell(tr, l); cell(tr, D.cfgs[t[3][j]], 'fmt');
        body.appendChild(tr);
      });
    }
  }
  function select(n) {
    document.querySelectorAll('.sel').forEach(function (el) { el.classList.remove('sel'); });
    if (n === null || n === undefined) return;
    document.querySelectorAll('[data-t="' + n + '"]').forEach(function (el) { el.classList.add('sel'); });
    document.body.setAttribute('data-selected', String(n));
    fillTable(n);
  }
  document.querySelectorAll('svg').forEach(function (svg) {
    svg.addEventListener('mousemove', function (e) {
      var n = target(e);
      if (n === null || !byNum.has(n)) { tip.hidden = true; return; }
      tip.textContent = describe(n);
      tip.hidden = false;
      var x = e.clientX + 14, y = e.clientY + 14;
      if (x + tip.offsetWidth > window.innerWidth) x = e.clientX - tip.offsetWidth - 8;
      if (y + tip.offsetHeight > window.innerHeight) y = e.clientY - tip.offsetHeight - 8;
      tip.style.left = x + 'px';
      tip.style.top = y + 'px';
    });
    svg.addEventListener('mouseleave', function () { tip.hidden = true; });
    svg.addEventListener('click', function (e) {
      var n = target(e);
      if (n !== null && byNum.has(n)) select(n);
    });
  });
  select(D.initial);
  document.body.setAttribute('data-ready', '1');
})();
)JS";

}  // namespace qsearch::report
