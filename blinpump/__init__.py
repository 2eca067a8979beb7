"""blinpump: a safety companion for BLINCYTO (blinatumomab) infusion pumps.

One name in site-packages. The folders of the repository are installed under it:
`blinpump.model` (model/), `blinpump.verify` (verify/), `blinpump.hil` (hil/) and
`blinpump.firmware` (firmware/, which imports itself relatively, so that on a board its
package name is free).
"""
__version__ = "0.2.0"
