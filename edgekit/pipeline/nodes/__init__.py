"""Built-in node types: sources, transforms, inference, render, sinks, and the face and OCR postprocessing."""
