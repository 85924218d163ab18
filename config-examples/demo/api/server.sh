#!/bin/sh
echo "api: hello from the demo"
