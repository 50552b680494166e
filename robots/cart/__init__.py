"""The delivery cart: locker board, offline pickup-code check, the kiosk screen, pickup tracking.

``robots.cart.locker``  the compartment locker board over RS-485 (Modbus RTU, pyserial + pymodbus PDUs)
``robots.cart.codes``   the offline code check against the keyed hashes synced from the orchestrator
``robots.cart.events``  the cart's durable event queue, delivered exactly once to the orchestrator
``robots.cart.pickup``  per-compartment pickup tracking (open → door opened → closed → empty)
``robots.cart.service`` the cart service composing them (used by the kiosk page and the agent)
``robots.cart.hmi``     the kiosk web page the cart serves to its screen
"""
