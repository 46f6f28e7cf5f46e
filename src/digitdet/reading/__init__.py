"""From detections to numbers: grouping digits into candidate numbers, whole-photo (pyramid + tiles)
detection, and the reader that turns image files into readings (the bundled model by default)."""
