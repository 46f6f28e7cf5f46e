"""From detections to numbers: grouping digits into candidate numbers (`grouping`), reading and scoring
numbers (`numbers`), whole-photo detection (`scan` picks `cascade`: find the number, then read it at the
model's scale, or `pyramid`: every scale, in tiles), the Reader that turns image files into readings with
the bundled model by default (`reader`, what read/predict/serve call), drawing a reading (`show`), batch
prediction writers (`predict`), batch reading on Ray Data (`ray_engine`) and the ONNX export verified by
reading the same numbers (`export`). It may import the ground floor, digitdet.data and digitdet.model,
never training or anything above.
"""
