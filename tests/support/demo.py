"""What the demo gallery's default catalogue is known to hold."""

# What a snapshot of the default demo catalogue counts (pages 0-2, JPEG only).
DEMO_COUNTS = {
    "links": 25,
    "selected": 19,
    "downloaded": 14,
    "reused": 0,
    "invalid": 2,
    "gone": 2,
    "failed": 1,
    "skipped": 6,
}
