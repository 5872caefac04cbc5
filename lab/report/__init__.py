"""Report: tables, plots and the HTML page (templates/) made from runs; never edited by hand.
May import every layer below it (core, kernels, results, guest, analysis), never lab.run or lab.cli.
"""
