"""Reading Sentinel-2: product layouts (.SAFE, zips, band folders), scenes with radiometry and validity, sun angles, cloud and shadow masks (SCL, s2cloudless), the demo scene.

May import: senclip.core.
"""
