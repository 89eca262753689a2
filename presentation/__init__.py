"""What the command line and the browser view both show: events as readable fields and lines, and moments read from people."""
