-- One server per project root, reused across buffers; `switchboard` is found on PATH, in the project's
-- .venv, or in the plugin checkout's .venv.
return {
  run = function(T)
    local server = require('switchboard.server')
    local root = vim.fn.getcwd()
    vim.cmd('edit main.py')
    vim.cmd('Switchboard chat')
    T.wait_ready()
    vim.cmd('wincmd p')
    vim.cmd('Switchboard usage')
    T.wait(function()
      return vim.bo.filetype == 'switchboard_usage'
    end, 'the usage float')
    vim.cmd('close')
    T.eq(#vim.lsp.get_clients({ name = 'switchboard' }), 1, 'one server for the project')

    local other = vim.fn.tempname()
    vim.fn.mkdir(other .. '/.git', 'p')
    vim.fn.writefile({ 'x = 1' }, other .. '/other.py')
    vim.cmd('edit ' .. other .. '/other.py')
    vim.cmd('Switchboard chat')
    T.wait(function()
      return server.client(vim.fs.normalize(other))
    end, 'the second server')
    T.eq(#vim.lsp.get_clients({ name = 'switchboard' }), 2, 'a second root, a second server')
    T.ok(server.client(root).id ~= server.client(vim.fs.normalize(other)).id, 'different clients')

    local _, found = server.find_cmd(other)
    T.eq(found, "the plugin checkout's .venv", 'the checkout .venv without anything else')
    local venv = other .. '/.venv/bin'
    vim.fn.mkdir(venv, 'p')
    vim.fn.writefile({ '#!/bin/sh', 'exit 0' }, venv .. '/switchboard')
    vim.fn.setfperm(venv .. '/switchboard', 'rwxr-xr-x')
    local cmd
    cmd, found = server.find_cmd(other)
    T.eq(found, "the project's .venv", "the project's .venv")
    T.eq(cmd, { venv .. '/switchboard', 'serve' }, 'its command')
    local bin = vim.fn.tempname()
    vim.fn.mkdir(bin, 'p')
    vim.fn.writefile({ '#!/bin/sh', 'exit 0' }, bin .. '/switchboard')
    vim.fn.setfperm(bin .. '/switchboard', 'rwxr-xr-x')
    vim.env.PATH = bin .. ':' .. vim.env.PATH
    cmd, found = server.find_cmd(other)
    T.eq(found, 'PATH', 'PATH first')
    T.eq(cmd, { bin .. '/switchboard', 'serve' }, 'the command on PATH')
  end,
}
