"""A Python API over the face and OCR apps, on any backend, for users of MediaPipe's old `mp.solutions`:

    import cv2
    from edgekit.apps import FaceMesh, TextReader

    frame = cv2.imread("photo.jpg")                      # BGR, as OpenCV reads it
    for face in FaceMesh(backend="ncnn").process(frame):  # detector="full" for far faces
        print(face.box, face.score, face.landmarks.shape)  # frame pixels; (468, 2)
    for line in TextReader(backend="mnn", version="v6").process(frame):
        print(line.text, line.score, line.box)            # box: (4, 2), clockwise from top-left

It runs the apps' own graphs (`apps/face/*.yaml`, `apps/ocr/*.yaml`: their models, input shapes,
preprocessing and postprocessing options) with the pipeline's own node code, called frame by frame instead of
through threads and queues; models are exported once into the pipeline's cache, as a graph run exports them."""
from .face import Face, FaceMesh
from .text import TextLine, TextReader

__all__ = ["Face", "FaceMesh", "TextLine", "TextReader"]
