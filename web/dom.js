// Small DOM helpers shared by the board's modules. Text goes in as textContent, never as HTML.

/** A `<span>` with a class and a text. */
export function span(className, text) {
  const node = document.createElement('span');
  node.className = className;
  node.textContent = text;
  return node;
}
