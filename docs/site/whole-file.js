// Material's copy button trims the end of what it copies, so a file shown whole would be copied
// without its last newline. On a block that shows a file whole, the button copies the code's
// text as it is: the file, byte for byte (the site's browser test checks it).
document.addEventListener(
  "click",
  (event) => {
    const button = event.target.closest?.(".whole-file button[data-md-type='copy'], .whole-file .md-clipboard");
    const code = button?.closest("pre")?.querySelector("code");
    if (code) button.setAttribute("data-clipboard-text", code.textContent);
  },
  true,
);
