# the corpus of submissions (notebooks with their helper files) is graded, never collected as tests
collect_ignore = ["notebooks"]
