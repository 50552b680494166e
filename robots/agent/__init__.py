"""The robot agent: the VDA 5050 client that runs on every robot, and the drivers behind it."""
