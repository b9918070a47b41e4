"""The voice-agent front: six tools (``tools``), one core that runs them (``desk``), their
sentences (``phrases``), and the platforms that call them (``platforms``, ``mcp``, ``export``).
"""
