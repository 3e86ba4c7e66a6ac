"""The model of a run: the result file, its typed records and the statistics every view reads.

Below both `bench` (which writes runs) and `report` (which reads them): neither imports the other.
"""
