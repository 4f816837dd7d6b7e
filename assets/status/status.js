// mailwheel status page: reloads /status.json every `refreshMs` and redraws the tables. Plain
// browser JavaScript, no build step, no library, nothing loaded from anywhere but this daemon.
// Everything is written with textContent: no text from the data is ever parsed as HTML.
'use strict';

(function () {
  var DEFAULT_REFRESH_MS = 2000;
  var curveUrl = null;

  function $(id) { return document.getElementById(id); }

  function num(n) {
    if (n === null || n === undefined) return '–';
    return Number(n).toLocaleString('en-US', { maximumFractionDigits: 1 });
  }

  function pct(r) {
    return r === null || r === undefined ? 'not known yet' : (r * 100).toFixed(3) + ' %';
  }

  function duration(s) {
    if (s === null || s === undefined) return '–';
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (Math.round(s) % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  function cell(tr, text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function fill(tableId, rows, build) {
    var body = $(tableId).querySelector('tbody');
    var fresh = document.createElement('tbody');
    rows.forEach(function (r) {
      var tr = document.createElement('tr');
      build(tr, r);
      fresh.appendChild(tr);
    });
    body.replaceWith(fresh);
  }

  function list(dlId, pairs) {
    var dl = $(dlId);
    dl.textContent = '';
    pairs.forEach(function (p) {
      var dt = document.createElement('dt');
      dt.textContent = p[0];
      var dd = document.createElement('dd');
      dd.textContent = p[1];
      if (p[2]) dd.className = p[2];
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
  }

  function render(d) {
    $('summary').textContent = 'instance ' + d.instance + ' · ' + num(d.users) + ' users, ' + num(d.jobs) + ' scheduled slots';
    $('updated').textContent = 'data of ' + d.generatedAt.replace('T', ' ').slice(0, 19) + ' UTC, reloaded every ' + d.refreshMs / 1000 + ' s';
    var problems = $('problems');
    problems.hidden = d.errors.length === 0;
    problems.textContent = d.errors.length === 0 ? '' : 'Not available: ' + d.errors.join('; ');

    // The curve: the picture's address changes when the server drew a new one.
    if (d.curve.svg !== curveUrl) {
      curveUrl = d.curve.svg;
      $('curve').src = curveUrl;
    }
    var c = d.curve;
    var peak = c.peaks.length > 0 ? ', busiest minute ' + c.peaks[0].at.slice(11, 16) + ' UTC with ' + num(c.peaks[0].sends) + ' sends' : '';
    $('curve-summary').textContent = num(c.totals.scheduled) + ' scheduled sends due in the next 24 h, ' + num(c.totals.claimed) + ' already claimed' +
      (c.capacityPerMinute === null ? ', no per-minute capacity limit' : ', capacity ' + num(c.capacityPerMinute) + ' a minute') + peak;

    $('broadcasts-none').hidden = d.broadcasts.length > 0;
    $('broadcasts').hidden = d.broadcasts.length === 0;
    fill('broadcasts', d.broadcasts, function (tr, b) {
      tr.dataset.id = b.id;
      cell(tr, b.id);
      cell(tr, b.subject);
      cell(tr, b.status + (b.heldUntil ? ' (held until ' + b.heldUntil.slice(0, 16).replace('T', ' ') + ' UTC)' : ''), b.paused ? 'bad' : '');
      var td = cell(tr, '');
      var bar = document.createElement('progress');
      bar.max = 1;
      if (b.progress !== null) bar.value = b.progress;
      td.appendChild(bar);
      td.appendChild(document.createTextNode(b.progress === null ? '' : ' ' + (b.progress * 100).toFixed(1) + ' %'));
      cell(tr, num(b.done) + ' / ' + (b.total === null ? '?' : num(b.total)), 'num done');
      cell(tr, num(b.sent), 'num');
      cell(tr, num(b.failed), 'num');
      cell(tr, b.ratePerSecond === null ? '–' : num(b.ratePerSecond) + '/s', 'num');
      cell(tr, b.paused ? 'paused' : duration(b.etaSeconds), 'num eta');
    });

    var q = d.queue;
    list('queue', [
      ['waiting', num(q.waiting)],
      ['in flight', num(q.inFlight)],
      ['not yet queued (backlog)', num(q.backlog)],
      ['rate', q.ratePerSecond === null ? 'no per-second limit' : num(q.ratePerSecond) + '/s'],
      ['sent / failed since start', num(q.sent) + ' / ' + num(q.failed)],
      ['circuit breaker', d.breaker.state + (d.breaker.opens > 0 ? ' (opened ' + d.breaker.opens + ' times)' : ''), d.breaker.state === 'open' ? 'bad' : 'good'],
    ]);

    var f = d.feedback;
    var fb = [];
    if (f === null || f.day === undefined) fb.push(['today', 'not known yet']);
    else {
      fb.push(['today (UTC), sent', num(f.day.sent)]);
      fb.push(['hard bounce rate', pct(f.day.bounceRate)]);
      fb.push(['complaint rate', pct(f.day.complaintRate)]);
    }
    (f === null ? [] : f.broadcasts).forEach(function (b) {
      fb.push(['broadcast ' + b.id, 'bounces ' + pct(b.bounceRate) + ', complaints ' + pct(b.complaintRate)]);
    });
    list('feedback', fb);

    fill('relays', d.relays, function (tr, r) {
      cell(tr, r.relay);
      cell(tr, r.up ? 'up' : 'down', r.up ? 'good' : 'bad');
      cell(tr, num(r.connections) + ' / ' + num(r.poolSize), 'num');
      cell(tr, num(r.sent), 'num');
      cell(tr, num(r.failures), 'num');
      cell(tr, num(r.downs), 'num');
    });

    $('destinations-section').hidden = d.destinations === null;
    fill('destinations', d.destinations || [], function (tr, g) {
      cell(tr, g.name);
      cell(tr, num(g.waiting), 'num');
      cell(tr, num(g.inFlight), 'num');
      cell(tr, g.ratePerSecond === null ? '–' : num(g.ratePerSecond) + '/s', 'num');
      cell(tr, num(g.sent), 'num');
      cell(tr, num(g.failed), 'num');
      cell(tr, num(g.deferrals), 'num');
    });

    $('failures-none').hidden = d.failures.recent.length > 0;
    $('failures').hidden = d.failures.recent.length === 0;
    fill('failures', d.failures.recent, function (tr, x) {
      cell(tr, new Date(x.atMs).toISOString().slice(0, 19).replace('T', ' '));
      cell(tr, x.outcome === 'retry' ? 'retried (attempt ' + x.attempts + ')' : 'failed', x.outcome === 'failed' ? 'bad' : '');
      cell(tr, x.kind + (x.broadcastId ? ' ' + x.broadcastId : ''));
      cell(tr, x.domain);
      cell(tr, x.smtpCode === undefined || x.smtpCode === null ? 'no reply' : String(x.smtpCode), 'num');
      cell(tr, x.reply, 'reply');
    });

    var cl = d.cluster;
    if (cl.error !== undefined && cl.cluster === undefined) {
      $('cluster-summary').textContent = 'not available: ' + cl.error;
      fill('members', [], function () {});
    } else {
      var s = cl.cluster;
      $('cluster-summary').textContent = s.error !== undefined
        ? s.mode + ': ' + s.owned + ' of ' + s.partitions + ' partitions here; the table cannot be read: ' + s.error
        : s.mode === 'solo' ? 'one instance (solo)'
        : s.mode + ': ' + s.owned + ' of ' + s.partitions + ' partitions held here, ' + s.free + ' free' + (cl.redis === null ? '' : ', redis ' + (cl.redis.up ? 'up' : 'down'));
      fill('members', s.members || [], function (tr, m) {
        cell(tr, m.id + (m.id === s.self ? ' (this one)' : ''));
        cell(tr, num(m.partitions), 'num');
        cell(tr, duration(m.heartbeatAgeMs / 1000) + ' ago', 'num');
      });
    }
  }

  function refresh() {
    var wait = DEFAULT_REFRESH_MS;
    fetch('/status.json', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (!res.ok) throw new Error('the daemon answered ' + res.status);
        return res.json();
      })
      .then(function (d) {
        wait = d.refreshMs || DEFAULT_REFRESH_MS;
        render(d);
      })
      .catch(function (err) {
        var p = $('problems');
        p.hidden = false;
        p.textContent = 'Cannot reload: ' + err.message + ' (trying again)';
      })
      .then(function () { setTimeout(refresh, wait); });
  }

  refresh();
})();
