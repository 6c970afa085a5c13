-- User commands for Arca. The server starts only after require("arca").setup().
if vim.g.loaded_arca then
  return
end
vim.g.loaded_arca = true

local function command(name, fn, desc)
  vim.api.nvim_create_user_command(name, function()
    fn()
  end, { desc = desc })
end

command("ArcaBuildImage", function()
  require("arca.commands").build_image(0)
end, "Arca: build the current crate's container image (arca.package)")
command("ArcaBuild", function()
  require("arca.commands").build_binary(0)
end, "Arca: build the current crate's binary (arca.build)")
vim.api.nvim_create_user_command("ArcaPush", function(opts)
  require("arca.commands").push(0, opts.args)
end, { nargs = "?", desc = "Arca: push the current crate's newest image (arca.push) to [REGISTRY/REPOSITORY[:TAG]] or its push_to" })
command("ArcaCancel", function()
  require("arca.commands").cancel(0)
end, "Arca: cancel the current crate's running build")
vim.api.nvim_create_user_command("ArcaRun", function(opts)
  require("arca.commands").run(0, opts.bang)
end, { bang = true, desc = "Arca: build the current crate's image if stale and run it in a terminal buffer (arca.run); with !, run it live" })
command("ArcaRunLive", function()
  require("arca.commands").run(0, true)
end, "Arca: run the current crate live: every saved change updates the running container (arca.run with live)")
command("ArcaStop", function()
  require("arca.commands").stop(0)
end, "Arca: stop the current crate's running container (arca.stop)")
command("ArcaStatus", function()
  require("arca.commands").status(0)
end, "Arca: show every crate's image status")
command("ArcaBuildLog", function()
  require("arca.commands").build_log(0)
end, "Arca: open the current crate's last build log")
vim.api.nvim_create_user_command("ArcaSbom", function(opts)
  require("arca.commands").sbom(0, opts.args ~= "" and opts.args or nil)
end, {
  nargs = "?",
  complete = function()
    return { "spdx", "cyclonedx" }
  end,
  desc = "Arca: open the current crate's image SBOM (spdx, or cyclonedx)",
})
command("ArcaLog", function()
  require("arca.commands").show_log()
end, "Arca: show the server's build output")
