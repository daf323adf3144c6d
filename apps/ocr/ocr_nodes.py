"""The OCR app's own node: a user-written node, loaded by the graph's `imports:`.

`ocr_text` turns the recogniser's lines into the record the app logs per frame: the text in reading order
plus each line's box, text and confidence."""
from edgekit.pipeline import Node, register


@register("ocr_text")
class OcrText(Node):
    inputs = ("in",)
    outputs = ("out",)

    def process(self, inputs, packet):
        lines = inputs["in"]["lines"]
        return {"text": "\n".join(ln["text"] for ln in lines),
                "lines": [{"text": ln["text"], "score": ln["score"], "box": ln["box"], "angle": ln.get("angle")}
                          for ln in lines]}
