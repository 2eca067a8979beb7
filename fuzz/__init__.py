"""Coverage-guided fuzzing of the board's frame path (fuzz/fuzz_board.py, seeds in fuzz/corpus/)."""
