"""The executable specification of the course: one test module per topic, see README.md."""
