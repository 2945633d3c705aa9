"""The HTTP shell (FastAPI): routes parse input, call one service function, format output."""
