"""What a command may do to the files it writes: never replace an earlier output unless told to, never write over
its own input, and never leave half a file (:class:`~contrastkit.outputs.output_target.OutputTarget`)."""
