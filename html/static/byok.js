/*
 * byok.js: the small progressive enhancements of the byok pages.
 * Everything works without it; with it:
 *  - alerts and toasts get a working close button ([data-byok-dismiss]);
 *  - toasts ([data-byok-timeout]) leave by themselves, pausing while hovered or focused;
 *  - the multi-provider form's select swaps the key input's label, placeholder,
 *    pattern, length limits, help text, docs link and htmx target;
 *  - disclosures ([data-byok-disclosure]) close on Escape, on a click outside,
 *    and when another one opens;
 *  - after an htmx swap, focus moves to the field at fault or to the new card,
 *    and the dashboard's count, empty state and "remove all" follow the cards.
 * No eval, no inline handlers, no HTML strings: it runs under
 * Content-Security-Policy "default-src 'self'".
 */
(function () {
  'use strict';

  var doc = document;

  function each(root, selector, fn) {
    if (root.matches && root.matches(selector)) fn(root);
    if (root.querySelectorAll) {
      Array.prototype.forEach.call(root.querySelectorAll(selector), fn);
    }
  }

  function setAttr(el, name, value) {
    if (value) el.setAttribute(name, value);
    else el.removeAttribute(name);
  }

  // Dismissing ---------------------------------------------------------

  function dismiss(box) {
    if (!box || !box.parentNode) return;
    if (box.contains(doc.activeElement)) {
      var main = doc.getElementById('byok-main');
      if (main) main.focus({ preventScroll: true });
    }
    box.parentNode.removeChild(box);
  }

  function startTimer(box) {
    if (box.byokTimer !== undefined) return;
    var ms = parseInt(box.getAttribute('data-byok-timeout'), 10);
    if (!(ms > 0)) return;
    var left = ms;
    var started = 0;
    var handle = null;
    function run() {
      started = Date.now();
      handle = window.setTimeout(function () { dismiss(box); }, left);
    }
    function pause() {
      if (handle === null) return;
      window.clearTimeout(handle);
      handle = null;
      left = Math.max(1000, left - (Date.now() - started));
    }
    function resume() {
      if (handle !== null || box.matches(':hover') || box.contains(doc.activeElement)) return;
      run();
    }
    box.addEventListener('mouseenter', pause);
    box.addEventListener('focusin', pause);
    box.addEventListener('mouseleave', resume);
    box.addEventListener('focusout', function () { window.setTimeout(resume, 0); });
    box.byokTimer = true;
    run();
  }

  // The multi-provider form ---------------------------------------------

  function syncProvider(select) {
    var opt = select.options[select.selectedIndex];
    var form = select.form;
    if (!opt || !form) return;
    var d = opt.dataset;
    var input = form.querySelector('[data-byok-key-input]');
    if (input) {
      setAttr(input, 'placeholder', d.placeholder);
      setAttr(input, 'pattern', d.pattern);
      setAttr(input, 'minlength', d.minlength);
      setAttr(input, 'maxlength', d.maxlength);
    }
    var label = form.querySelector('[data-byok-key-label]');
    if (label && d.label) label.textContent = d.label;
    var help = form.querySelector('[data-byok-help]');
    if (help && d.help) help.textContent = d.help;
    var docs = form.querySelector('[data-byok-docs]');
    if (docs) {
      if (d.docsUrl && d.docsUrl !== '#') {
        docs.setAttribute('href', d.docsUrl);
        docs.hidden = false;
      } else {
        docs.hidden = true;
      }
    }
    if (d.target && form.hasAttribute('hx-post')) {
      form.setAttribute('hx-target', d.target);
    }
  }

  // Dashboard summary ---------------------------------------------------------

  // After a card changed in place, bring the dashboard's count, its empty
  // state and its "remove all" control in line with the cards.
  function syncDashboard() {
    each(doc, '[data-byok-dashboard]', function (dash) {
      var live = dash.querySelectorAll('[data-byok-state="live"]').length;
      var stored = live + dash.querySelectorAll('[data-byok-state="expired"]').length;
      var count = dash.querySelector('[data-byok-count]');
      if (count) count.textContent = String(live);
      var empty = dash.querySelector('[data-byok-empty]');
      if (empty) empty.hidden = stored > 0;
      var clear = dash.querySelector('[data-byok-clear]');
      if (clear) {
        clear.hidden = stored === 0;
        if (stored === 0) clear.open = false;
      }
    });
  }

  // Disclosures ------------------------------------------------------------

  function closeDisclosures(except) {
    each(doc, 'details[data-byok-disclosure][open]', function (d) {
      if (d !== except && !d.contains(except)) d.open = false;
    });
  }

  // Wiring -------------------------------------------------------------------

  function enhance(root) {
    each(root, '[data-byok-dismiss][hidden]', function (b) { b.hidden = false; });
    each(root, '[data-byok-timeout]', startTimer);
    each(root, 'select[data-byok-provider-select]', syncProvider);
  }

  doc.addEventListener('click', function (e) {
    var t = e.target;
    if (!(t instanceof Element)) return;
    var btn = t.closest('[data-byok-dismiss]');
    if (btn) {
      dismiss(btn.closest('[data-byok-dismissible]'));
      return;
    }
    var inside = t.closest('details[data-byok-disclosure]');
    closeDisclosures(inside);
  });

  doc.addEventListener('toggle', function (e) {
    var d = e.target;
    if (d instanceof HTMLDetailsElement && d.open && d.hasAttribute('data-byok-disclosure')) {
      closeDisclosures(d);
    }
  }, true);

  doc.addEventListener('keydown', function (e) {
    if (e.key !== 'Escape') return;
    var t = e.target instanceof Element ? e.target : null;
    var d = t && t.closest('details[data-byok-disclosure][open]');
    if (!d) return;
    d.open = false;
    var s = d.querySelector('summary');
    if (s) s.focus();
    e.preventDefault();
  });

  doc.addEventListener('change', function (e) {
    var t = e.target;
    if (t instanceof HTMLSelectElement && t.hasAttribute('data-byok-provider-select')) {
      syncProvider(t);
    }
  });

  // htmx: enhance new content; remember which element a swap replaces so
  // focus can follow it; clear the multi-provider form after it saved.
  var swapTarget = null;
  var swapSource = null;

  doc.addEventListener('htmx:load', function (e) { enhance(e.target); });

  doc.addEventListener('htmx:beforeSwap', function (e) {
    var target = e.detail && e.detail.target;
    swapTarget = target && target.id ? target.id : null;
    swapSource = e.detail && e.detail.requestConfig ? e.detail.requestConfig.elt : null;
  });

  doc.addEventListener('htmx:afterRequest', function (e) {
    var elt = e.detail && e.detail.elt;
    if (elt instanceof HTMLFormElement && elt.hasAttribute('data-byok-multi') && e.detail.successful) {
      var input = elt.querySelector('[data-byok-key-input]');
      if (input) input.value = '';
    }
  });

  doc.addEventListener('htmx:afterSettle', function () {
    syncDashboard();
    if (!swapTarget) return;
    var el = doc.getElementById(swapTarget);
    var source = swapSource;
    swapTarget = null;
    swapSource = null;
    if (!el) return;
    var invalid = el.querySelector('[aria-invalid="true"]');
    if (invalid) {
      invalid.focus();
      return;
    }
    // A form outside the swapped element (the multi-provider form) keeps focus.
    if (source && source.isConnected && !el.contains(source)) return;
    var focus = el.querySelector('[data-byok-focus]');
    if (focus) focus.focus();
  });

  function init() {
    enhance(doc);
    var summary = doc.querySelector('[data-byok-error-summary]');
    if (summary && !doc.querySelector('[autofocus]')) summary.focus();
  }

  if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', init);
  else init();
})();
