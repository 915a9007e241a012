from weightinit_cli.cli import app

app(prog_name="winit")
