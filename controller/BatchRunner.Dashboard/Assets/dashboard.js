// The dashboard's pages are rendered on the server; this only keeps their live part (<main id="live">) current: every
// few seconds it fetches the same address with ?live=1 and swaps the answer in when it changed. It runs nothing it
// receives (the page's content security policy allows no inline script), and it pauses while the tab is hidden.
(function () {
  'use strict';
  const live = document.getElementById('live');
  const stamp = document.getElementById('updated');
  if (!live) {
    return;
  }

  const every = Math.max(1, Number(live.dataset.refresh) || 2) * 1000;
  const address = new URL(window.location.href);
  address.searchParams.set('live', '1');
  let last = live.innerHTML;
  let refreshes = 0;

  function say(text, failing) {
    if (stamp) {
      stamp.textContent = text;
      stamp.classList.toggle('failing', failing);
    }
  }

  async function refresh() {
    if (document.hidden) {
      return;
    }

    try {
      const response = await fetch(address, { cache: 'no-store', headers: { Accept: 'text/html' }, credentials: 'same-origin' });
      const html = await response.text();
      if (html !== last) {
        live.innerHTML = html;
        last = html;
      }

      refreshes++;
      document.body.dataset.refreshes = String(refreshes);
      say(response.ok ? 'Updated ' + new Date().toLocaleTimeString() : 'Updated ' + new Date().toLocaleTimeString() + ' (' + response.status + ')', !response.ok);
    } catch (e) {
      say('The controller does not answer: showing what it last said', true);
    }
  }

  let timer = window.setInterval(refresh, every);
  document.addEventListener('visibilitychange', () => {
    window.clearInterval(timer);
    if (!document.hidden) {
      refresh();
      timer = window.setInterval(refresh, every);
    }
  });
})();
