"""What the commands write: one rule for every output (never replace an earlier one unless told to, never write over
an input, never leave half a file: :class:`~contrastkit.outputs.output_target.OutputTarget`), and the self-contained
HTML page the reports are (:func:`~contrastkit.outputs.html_page.render_page`)."""
