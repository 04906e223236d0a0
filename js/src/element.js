// What a click is about.

// A short CSS selector that survives content edits: "#id", else the tag and first two classes
// ("a.btn.cta"). Names are escaped, so it is always valid for document.querySelector.
export var selector = (el) =>
  el.id ? '#' + CSS.escape(el.id) : [el.localName, ...[...el.classList].slice(0, 2).map(CSS.escape)].join('.')

// The event fields of a click on `el`: data-funnel-prop-* as props, outbound for links to
// another host, and the element: tag, text (whitespace collapsed, trimmed, capped at 100
// characters), href (anchors only: an SVG link's href is an object), id and selector.
// The text is never what was typed: of the form controls only submit, button and reset inputs
// have one, their label (the value); a button's text is its visible text, not its value.
export var describe = (el, host) => {
  var props = {}
  for (var a of el.attributes) a.name.startsWith('data-funnel-prop-') && (props[a.name.slice(17)] = a.value)
  var tag = el.localName
  var text =
    tag == 'input' ? (/^(submit|button|reset)$/.test(el.type) ? el.value : '') : /^(select|textarea)$/.test(tag) ? '' : el.textContent
  return {
    props,
    outbound: !!el.host && el.host != host,
    element: {
      tag,
      text: text.replace(/\s+/g, ' ').trim().slice(0, 100),
      href: el.protocol && el.href,
      id: el.id,
      selector: selector(el),
    },
  }
}
